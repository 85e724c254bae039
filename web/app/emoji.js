// The emoji picker: a searchable grid of emoji in groups, with the ones this
// browser used recently first (kept in localStorage). It is used for
// reactions and in the composer. The names are for the search box and for
// screen readers; the picker is built with the DOM API like the rest.
import { h, replace } from './dom.js';

/** [group, [[emoji, 'name words'], …]] */
export const EMOJI = [
  ['Smileys', [
    ['😀', 'grinning smile happy'], ['😃', 'smiley happy'], ['😄', 'smile happy joy'], ['😁', 'grin beaming'],
    ['😆', 'laughing'], ['😅', 'sweat smile'], ['🤣', 'rofl rolling laughing'], ['😂', 'joy tears laughing'],
    ['🙂', 'slightly smiling'], ['🙃', 'upside down'], ['😉', 'wink'], ['😊', 'blush happy'], ['😇', 'innocent halo'],
    ['🥰', 'love hearts'], ['😍', 'heart eyes love'], ['🤩', 'star struck'], ['😘', 'kiss'], ['😋', 'yum tasty'],
    ['😛', 'tongue'], ['😜', 'wink tongue crazy'], ['🤪', 'zany crazy'], ['🤔', 'thinking hmm'], ['🤨', 'raised eyebrow'],
    ['😐', 'neutral'], ['😑', 'expressionless'], ['😶', 'no mouth silent'], ['🙄', 'eye roll'], ['😏', 'smirk'],
    ['😬', 'grimace awkward'], ['😌', 'relieved'], ['😔', 'pensive sad'], ['😪', 'sleepy'], ['😴', 'sleeping zzz'],
    ['😷', 'mask sick'], ['🤒', 'thermometer ill'], ['🤯', 'mind blown exploding'], ['🥳', 'party partying celebrate'],
    ['😎', 'cool sunglasses'], ['🤓', 'nerd glasses'], ['😕', 'confused'], ['😟', 'worried'], ['😮', 'open mouth wow surprised'],
    ['😲', 'astonished'], ['😳', 'flushed embarrassed'], ['🥺', 'pleading puppy'], ['😢', 'cry sad tear'], ['😭', 'sob crying'],
    ['😱', 'scream fear'], ['😤', 'triumph huff'], ['😡', 'angry rage'], ['🤬', 'cursing swearing'], ['💀', 'skull dead'],
    ['🤡', 'clown'], ['👻', 'ghost'], ['👽', 'alien'], ['🤖', 'robot bot'], ['💩', 'poop'], ['🙈', 'see no evil monkey'],
  ]],
  ['People', [
    ['👍', 'thumbs up yes ok +1 like'], ['👎', 'thumbs down no -1 dislike'], ['👌', 'ok hand'], ['✌️', 'victory peace'],
    ['🤞', 'crossed fingers luck'], ['🤝', 'handshake deal'], ['👏', 'clap applause'], ['🙌', 'raised hands hooray'],
    ['👐', 'open hands'], ['🙏', 'pray please thanks'], ['💪', 'muscle strong flex'], ['👋', 'wave hello bye'],
    ['🤙', 'call me'], ['👉', 'point right'], ['👈', 'point left'], ['👆', 'point up'], ['👇', 'point down'],
    ['☝️', 'index up'], ['✋', 'raised hand stop'], ['🖐️', 'hand fingers'], ['🤘', 'rock on horns'], ['🫡', 'salute'],
    ['🤷', 'shrug'], ['🤦', 'facepalm'], ['🙋', 'raising hand'], ['🙇', 'bow'], ['👀', 'eyes look'], ['🧠', 'brain'],
  ]],
  ['Nature', [
    ['🐶', 'dog'], ['🐱', 'cat'], ['🐭', 'mouse'], ['🦊', 'fox'], ['🐻', 'bear'], ['🐼', 'panda'], ['🐨', 'koala'],
    ['🐯', 'tiger'], ['🦁', 'lion'], ['🐮', 'cow'], ['🐷', 'pig'], ['🐸', 'frog'], ['🐵', 'monkey'], ['🐔', 'chicken'],
    ['🐧', 'penguin'], ['🐦', 'bird'], ['🦄', 'unicorn'], ['🐝', 'bee'], ['🐛', 'bug'], ['🦋', 'butterfly'], ['🐢', 'turtle'],
    ['🐍', 'snake'], ['🐙', 'octopus'], ['🐳', 'whale'], ['🌵', 'cactus'], ['🌲', 'tree evergreen'], ['🌻', 'sunflower'],
    ['🌹', 'rose'], ['🍀', 'four leaf clover luck'], ['🍁', 'maple leaf'], ['🌈', 'rainbow'], ['☀️', 'sun sunny'],
    ['🌙', 'moon night'], ['⭐', 'star'], ['🌟', 'glowing star'], ['⚡', 'zap lightning'], ['🔥', 'fire lit hot'],
    ['💧', 'droplet water'], ['❄️', 'snowflake cold'], ['🌊', 'wave ocean'],
  ]],
  ['Food', [
    ['🍎', 'apple'], ['🍌', 'banana'], ['🍇', 'grapes'], ['🍓', 'strawberry'], ['🍑', 'peach'], ['🍍', 'pineapple'],
    ['🥑', 'avocado'], ['🌶️', 'hot pepper chili'], ['🍞', 'bread'], ['🧀', 'cheese'], ['🍕', 'pizza'], ['🍔', 'burger'],
    ['🍟', 'fries'], ['🌮', 'taco'], ['🍣', 'sushi'], ['🍜', 'ramen noodles'], ['🍩', 'doughnut donut'], ['🍪', 'cookie'],
    ['🎂', 'birthday cake'], ['🍰', 'cake'], ['🍫', 'chocolate'], ['🍿', 'popcorn'], ['☕', 'coffee tea hot'],
    ['🍵', 'tea'], ['🍺', 'beer'], ['🍻', 'beers cheers'], ['🍷', 'wine'], ['🥂', 'champagne toast'],
  ]],
  ['Activities', [
    ['🎉', 'tada party celebration hooray'], ['🎊', 'confetti'], ['🎈', 'balloon'], ['🎁', 'gift present'], ['🏆', 'trophy win'],
    ['🥇', 'gold medal first'], ['⚽', 'soccer football'], ['🏀', 'basketball'], ['🎾', 'tennis'], ['🎮', 'video game'],
    ['🎲', 'dice game'], ['🎯', 'target bullseye'], ['🎵', 'music note'], ['🎶', 'notes music'], ['🎸', 'guitar'],
    ['🎨', 'art palette'], ['🎬', 'movie clapper'], ['📚', 'books'], ['✈️', 'airplane travel'], ['🚀', 'rocket launch ship'],
    ['🚗', 'car'], ['🚲', 'bicycle bike'], ['🏠', 'house home'], ['🏖️', 'beach vacation'],
  ]],
  ['Objects', [
    ['💡', 'bulb idea'], ['🔔', 'bell notification'], ['🔕', 'no bell mute'], ['📌', 'pin pushpin'], ['📎', 'paperclip'],
    ['🔗', 'link'], ['🔒', 'lock locked'], ['🔑', 'key'], ['🛠️', 'tools'], ['⚙️', 'gear settings'], ['🧪', 'test tube'],
    ['💻', 'laptop computer'], ['📱', 'phone mobile'], ['⌨️', 'keyboard'], ['🖥️', 'desktop'], ['📷', 'camera'],
    ['📝', 'memo note'], ['📅', 'calendar date'], ['📈', 'chart up increasing'], ['📉', 'chart down decreasing'],
    ['⏰', 'alarm clock'], ['⏳', 'hourglass wait'], ['💰', 'money bag'], ['📦', 'package box ship'], ['🐛', 'bug'],
    ['📣', 'megaphone announce'], ['✉️', 'envelope mail'],
  ]],
  ['Symbols', [
    ['❤️', 'heart love red'], ['🧡', 'orange heart'], ['💛', 'yellow heart'], ['💚', 'green heart'], ['💙', 'blue heart'],
    ['💜', 'purple heart'], ['🖤', 'black heart'], ['💔', 'broken heart'], ['💯', 'hundred 100 perfect'], ['✅', 'check done yes'],
    ['✔️', 'check mark'], ['❌', 'cross no wrong'], ['❗', 'exclamation important'], ['❓', 'question'], ['⚠️', 'warning'],
    ['🚫', 'forbidden no'], ['➕', 'plus add'], ['➖', 'minus'], ['🔴', 'red circle'], ['🟢', 'green circle'],
    ['🆗', 'ok button'], ['🆕', 'new'], ['🔝', 'top'], ['♻️', 'recycle'], ['✨', 'sparkles shiny'], ['💥', 'boom collision'],
    ['💬', 'speech balloon comment'], ['👁️‍🗨️', 'eye speech'], ['🏁', 'checkered flag finish'],
  ]],
];

const RECENT_KEY = 'sori.emoji.recent';
const RECENT_MAX = 16;

/** Emoji this browser picked lately, newest first. */
export function recentEmoji() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string' && e.length <= 16).slice(0, RECENT_MAX) : [];
  } catch { return []; }
}

function remember(emoji) {
  const list = [emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
  try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch { /* private mode: no memory */ }
}

const NAMES = new Map(EMOJI.flatMap(([, list]) => list));

/**
 * A picker element: a search box and a grid of emoji buttons. onPick(emoji)
 * runs on a choice; onClose() on Escape. Focus the search box to start.
 * @param {{label: string, onPick: (e: string) => void, onClose: () => void, pressed?: (e: string) => boolean}} opts
 */
export function emojiPicker({ label, onPick, onClose, pressed = () => false }) {
  const search = h('input', { type: 'search', class: 'emoji-search', placeholder: 'Search emoji', 'aria-label': 'Search emoji', autocomplete: 'off' });
  const grid = h('div', { class: 'emoji-grid' });
  const root = h('div', { class: 'emoji-picker', role: 'dialog', 'aria-label': label }, search, grid);
  const button = (e) => h('button', { type: 'button', class: 'emoji', title: NAMES.get(e) ?? e,
    'aria-label': `${e} ${NAMES.get(e) ?? ''}`.trim(), 'aria-pressed': pressed(e) ? 'true' : null,
    onclick: () => { remember(e); onPick(e); } }, e);
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const words = q.split(/\s+/).filter(Boolean);
    const matches = ([e, names]) => e === q || words.every((w) => names.split(' ').some((n) => n.startsWith(w)));
    const groups = q ? [['Results', EMOJI.flatMap(([, list]) => list).filter(matches)]]
      : [['Recent', recentEmoji().map((e) => [e])], ...EMOJI];
    const seen = new Set();
    replace(grid, groups.filter(([, list]) => list.length).map(([name, list]) => [
      h('p', { class: 'emoji-group', text: name }),
      h('div', { class: 'emoji-row', role: 'group', 'aria-label': name }, list.filter(([e]) => name === 'Recent' || !seen.has(e))
        .map(([e]) => { seen.add(e); return button(e); })),
    ]));
    if (q && !grid.querySelector('button')) grid.append(h('p', { class: 'hint', text: 'No emoji found.' }));
  };
  search.addEventListener('input', render);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); grid.querySelector('button')?.click(); }
  });
  root.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); onClose(); } });
  render();
  return root;
}
