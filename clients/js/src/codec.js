// Framing helpers: protocol v1 messages are JSON objects, several of which
// may share one frame or HTTP body as JSON lines.

/**
 * Splits text holding one or more JSON objects into the text of each object.
 * It tracks strings and nesting instead of splitting at newlines, because a
 * publication's data is the publisher's JSON verbatim and may itself contain
 * newlines (as whitespace between tokens).
 * @param {string} text
 * @returns {string[]}
 */
export function splitMessages(text) {
  const out = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    switch (c) {
      case 0x22:
        inString = true;
        break;
      case 0x7b /* { */:
      case 0x5b /* [ */:
        if (depth === 0) start = i;
        depth++;
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        depth--;
        if (depth === 0 && start >= 0) {
          out.push(text.slice(start, i + 1));
          start = -1;
        }
        break;
    }
  }
  if (depth !== 0 || inString) {
    // Malformed: hand the rest over whole, so JSON.parse reports it.
    out.push(text.slice(start >= 0 ? start : 0));
  }
  return out;
}

/**
 * Parses every message in text; a part that is not valid JSON becomes an
 * Error in the result, so one bad message does not hide the others.
 * @param {string} text
 * @returns {Array<Record<string, any>|Error>}
 */
export function decodeMessages(text) {
  return splitMessages(text).map((part) => {
    try {
      return JSON.parse(part);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  });
}

/**
 * Joins encoded commands into frames of at most maxBytes characters each
 * (one command larger than that still gets a frame of its own, and the
 * server answers it with its own error).
 * @param {string[]} commands encoded commands
 * @param {number} maxBytes
 * @returns {string[]} frames, commands separated by newlines
 */
export function packFrames(commands, maxBytes) {
  const frames = [];
  let current = '';
  for (const c of commands) {
    if (current && current.length + 1 + c.length > maxBytes) {
      frames.push(current);
      current = '';
    }
    current = current ? current + '\n' + c : c;
  }
  if (current) frames.push(current);
  return frames;
}
