// What a TypeScript user of Node 20 writes, as the README tells: the ws
// package's WebSocket passed to the client. types.test.js compiles this
// with tsc --strict; it is never run.
import WebSocket from 'ws';
import { ClientErrorCode, Outbox, SoriClient, SoriError, type ConnectInfo, type OutboxItem, type Publication } from '@sori/client';

const client = new SoriClient({ url: 'http://127.0.0.1:7700', token: process.env.SORI_TOKEN, WebSocket, connectTimeout: 5000 });
client.on('error', (err: Error) => {
  if (err instanceof SoriError && err.code === ClientErrorCode.NOT_SORI) console.error('wrong URL:', err.message);
});
const sub = client.subscribe<{ text: string }>('app:lobby', {
  onPublication: (p: Publication<{ text: string }>) => console.log(p.offset, p.data.text),
});
export async function main(): Promise<ConnectInfo> {
  const info = await client.connect();
  await sub.publish({ text: 'hello' });
  return info;
}

// The browser's (and Node 22's) global WebSocket fits as well.
export const browser = new SoriClient({ url: 'http://127.0.0.1:7700', WebSocket: globalThis.WebSocket });

// Something that is not a WebSocket constructor is still refused (the check can fail).
// @ts-expect-error a string is not a WebSocket constructor
export const wrong = new SoriClient({ url: 'http://127.0.0.1:7700', WebSocket: 'ws' });

// The outbox: memory-only storage in Node, one key per user.
const outbox = new Outbox(client, { key: 'alice', storage: null });
outbox.on('sent', (item: OutboxItem, result: any) => console.log(item.id, item.data.client_id, result));
export const queued: { id: string; sent: Promise<any> } = outbox.publish('chat:1', { type: 'message', text: 'hi' });
