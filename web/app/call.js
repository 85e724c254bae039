// Calls in a room (issue 6). Until the signaling lands this is a placeholder
// with the interface the app uses: a button in the room header (slot) and a
// panel above the timeline.
export class CallPanel {
  constructor({ client, me, rpc, slot, panel }) {
    Object.assign(this, { client, me, rpc, slot, panel });
    this.room = null;
  }

  /** Called when the open room changes (null: no room). */
  setRoom(room) {
    this.room = room;
  }
}
