// The thread panel: a message's thread beside the timeline on wide screens
// (over it on narrow ones), with its replies, the replies still in the
// outbox, and a composer whose messages carry "thread": root. The replies are
// messages of the room's log (same channel, same seq space): RoomModel keeps
// them and leaves them out of the main timeline.
import { api } from './api.js';
import { $, h, replace, announce } from './dom.js';

export class ThreadPanel {
  /** @param {import('./room.js').RoomView} view */
  constructor(view) {
    this.view = view;
    this.root = 0;
    this.panel = $('#thread-panel');
    this.list = $('#thread-list');
    this.pending = $('#thread-pending');
    this.text = $('#thread-text');
    $('#thread-close').addEventListener('click', () => { this.close(); $('#composer-text').focus(); });
    $('#thread-form').addEventListener('submit', (e) => { e.preventDefault(); this.#send(); });
    this.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.#send(); }
      if (e.key === 'Escape') { e.preventDefault(); this.close(); $('#composer-text').focus(); }
    });
  }

  get model() { return this.view.model; }

  /** Opens root's thread (flashing reply seq when given) and loads it. */
  async open(root, flash = 0) {
    const model = this.model;
    if (!model) return false;
    this.root = root;
    this.panel.hidden = false;
    $('#chat-view').classList.add('thread-open');
    this.render();
    this.renderPending();
    try {
      const res = await api.thread(model.id, root);
      if (this.model !== model || this.root !== root) return false;
      model.applyThread(res.root, res.messages ?? []);
    } catch (err) {
      replace(this.list, h('li', { class: 'error', text: err.status === 404 ? 'That message is gone.' : err.message }));
      return false;
    }
    model.threadRead(root);
    if (flash) {
      const li = this.list.querySelector(`[data-seq="${flash}"]`);
      li?.scrollIntoView({ block: 'center' });
      li?.classList.add('flash');
    } else {
      this.text.focus();
    }
    return true;
  }

  close() {
    if (!this.root) return;
    this.root = 0;
    this.panel.hidden = true;
    $('#chat-view').classList.remove('thread-open');
    replace(this.list);
    replace(this.pending);
  }

  /** Re-renders the open thread from the model. */
  render() {
    const model = this.model;
    if (!this.root || !model) return;
    const root = model.messages.get(this.root);
    const replies = model.threadReplies(this.root);
    const atBottom = this.list.parentElement.scrollHeight - this.list.parentElement.scrollTop - this.list.parentElement.clientHeight < 48;
    const item = (msg) => {
      const li = this.view.buildForThread(msg);
      li.id = `thread-msg-${msg.seq}`;
      li.querySelector('.thread-summary')?.remove();
      return li;
    };
    replace(this.list, root ? item(root) : h('li', { class: 'hint', text: 'Loading…' }),
      h('li', { class: 'separator thread-count', role: 'separator', text: `${replies.length} repl${replies.length === 1 ? 'y' : 'ies'}` }),
      replies.map(item));
    if (document.visibilityState === 'visible' && root) model.threadSeen.set(this.root, Math.max(model.threadSeen.get(this.root) ?? 0, root.thread_last_seq));
    if (atBottom) this.list.parentElement.scrollTop = this.list.parentElement.scrollHeight;
  }

  /** The outbox's replies to this thread, below it. */
  renderPending() {
    const model = this.model;
    if (!this.root || !model) return;
    replace(this.pending, model.pendingVisible().filter((it) => Number(it.data?.thread) === this.root)
      .map((it) => this.view.pendingElement(it)));
  }

  #send() {
    const text = this.text.value;
    if (!text.trim() || !this.root) return;
    this.view.sendThreadReply(this.root, text);
    this.text.value = '';
    announce('Reply sent');
  }
}
