// Unit tests of call.js's DOM-free helpers: the screen share's msid renaming
// of outgoing descriptions (docs/calls.md, "Screen share") and the lookup of
// a received m-section's msid that tells a screen from a camera, and who
// makes a mesh connection's first offer (docs/calls.md, "Who offers"), and
// when the app asks the SFU for an ICE restart (docs/calls.md, "ICE restart").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markScreen, msidOf, screenMsid, mayOfferFirst, shouldAskSFURestart, SFU_RESTART_QUIET_MS, iceServersExpiry } from '../../web/app/call.js';

const offer = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=sendrecv', 'a=msid:cam-1 mic-1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:1', 'a=sendrecv', 'a=msid:cam-1 video-1', 'a=ssrc:11 msid:cam-1 video-1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:2', 'a=sendonly', 'a=msid:disp-9 track-9', 'a=ssrc:22 msid:disp-9 track-9',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:3', 'a=recvonly', '',
].join('\r\n');

const stream = (id, ...tracks) => ({ id, getTracks: () => tracks.map((t) => ({ id: t })) });

test('markScreen renames only the screen stream and track, in msid and ssrc lines', () => {
  const out = markScreen(offer, stream('disp-9', 'track-9'));
  assert.match(out, /^a=msid:screen-disp-9 screen-track-9$/m);
  assert.match(out, /^a=ssrc:22 msid:screen-disp-9 screen-track-9$/m);
  assert.match(out, /^a=msid:cam-1 video-1$/m);
  assert.match(out, /^a=ssrc:11 msid:cam-1 video-1$/m);
  assert.equal(out.replace(/screen-/g, ''), offer);
});

test('markScreen renames whatever track part the browser wrote for the screen stream', () => {
  const out = markScreen(offer, stream('disp-9', 'not-the-msid-track'));
  assert.match(out, /^a=msid:screen-disp-9 screen-track-9$/m);
  assert.match(out, /^a=msid:cam-1 video-1$/m);
});

test('markScreen leaves a description alone without a screen share', () => {
  assert.equal(markScreen(offer, null), offer);
  assert.equal(markScreen(offer, stream('other', 'x')), offer);
});

test('msidOf and screenMsid read the m-section of a mid', () => {
  const marked = markScreen(offer, stream('disp-9', 'track-9'));
  assert.equal(msidOf(marked, '1'), 'cam-1 video-1');
  assert.equal(msidOf(marked, '2'), 'screen-disp-9 screen-track-9');
  assert.equal(msidOf(marked, '3'), '');
  assert.equal(msidOf(marked, '7'), '');
  assert.equal(msidOf(marked, null), '');
  assert.equal(screenMsid(marked, '2'), true);
  assert.equal(screenMsid(marked, '1'), false);
  assert.equal(screenMsid(offer, '2'), false);
  // The SFU's forwarded track: stream = publisher id, track = "<publisher>/<track>".
  assert.equal(screenMsid('m=video 9 X 96\r\na=mid:4\r\na=msid:pub1 pub1/screen-track-9\r\n', '4'), true);
  assert.equal(screenMsid('m=video 9 X 96\r\na=mid:4\r\na=msid:pub1 pub1/video-1\r\n', '4'), false);
});

test('mayOfferFirst: the impolite side offers at once, the polite side after the first offer or after waiting in vain', () => {
  assert.equal(mayOfferFirst(false, false, false), true);
  assert.equal(mayOfferFirst(true, false, false), false);
  assert.equal(mayOfferFirst(true, true, false), true);
  assert.equal(mayOfferFirst(true, false, true), true);
});

test('shouldAskSFURestart: once per outage, not after the SFU restarted, again only after a long quiet', () => {
  const q = SFU_RESTART_QUIET_MS;
  assert.ok(q > 80_000, `longer than the SFU's longest retry wait (80 s): ${q}`);
  assert.equal(shouldAskSFURestart(null, null, 5_000), true, 'the first stall of an outage asks');
  assert.equal(shouldAskSFURestart(5_000, null, 13_000), false, 'asked already: the SFU retries on its own');
  assert.equal(shouldAskSFURestart(null, 3_000, 5_000), false, 'the SFU restarted first');
  assert.equal(shouldAskSFURestart(5_000, 15_000, 5_000 + q), false, "the SFU's retry counts as a restart");
  assert.equal(shouldAskSFURestart(5_000, null, 5_000 + q), true, 'nobody restarted for the quiet time: ask again');
  assert.equal(shouldAskSFURestart(null, 1_000, 1_000 + q), true);
});

test('iceServersExpiry: the earliest expiry in the TURN usernames, none without TURN', () => {
  const turn = (u) => ({ urls: ['turn:t.example.org:3478'], username: u, credential: 'x' });
  assert.equal(iceServersExpiry([{ urls: ['stun:t.example.org:3478'] }, turn('1767225600:bob')]), 1767225600_000);
  assert.equal(iceServersExpiry([turn('1767225700:bob'), turn('1767225600:bob')]), 1767225600_000);
  assert.equal(iceServersExpiry([{ urls: ['stun:t.example.org:3478'] }]), Infinity);
  assert.equal(iceServersExpiry([turn('bob')]), Infinity, 'not a TURN REST username');
  assert.equal(iceServersExpiry(undefined), Infinity);
});
