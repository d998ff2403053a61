/**
 * RFB key events → PC keyboard scan codes.
 *
 * RFB names keys by X11 keysym (RFC 6143 §7.5.4), which says what a key means (`A`, `!`)
 * rather than which key it is; the guest wants which key, as scan code set 1 bytes (what it
 * reads from an i8042 translating set 2, the PC default; the i8042 model converts when the
 * guest turned translation off). The map is a US layout: a shifted symbol maps to the key
 * that produces it, and the Shift the client sends itself supplies the shift, so `!` is key 1.
 * Clients that know the physical key (QEMU's extended key event) send its XT code instead:
 * `xtKeycodeScancodes` handles that, independent of layout.
 *
 * Keysyms: X11's keysymdef.h; set 1 codes: the IBM PC AT keyboard reference.
 */

/** A key's set 1 make code; `extended` keys are sent with an 0xE0 prefix. */
interface Key {
  code: number;
  extended: boolean;
}

const KEYSYM_TO_KEY = new Map<number, Key>();

function key(code: number, ...keysyms: number[]): void {
  for (const k of keysyms) KEYSYM_TO_KEY.set(k, { code, extended: false });
}
function ext(code: number, ...keysyms: number[]): void {
  for (const k of keysyms) KEYSYM_TO_KEY.set(k, { code, extended: true });
}
function chars(code: number, s: string): void {
  key(code, ...[...s].map((c) => c.charCodeAt(0)));
}

// The main block (US layout): each key's unshifted and shifted symbols.
const ROWS: [number, string][] = [
  [0x02, '1!'], [0x03, '2@'], [0x04, '3#'], [0x05, '4$'], [0x06, '5%'], [0x07, '6^'], [0x08, '7&'], [0x09, '8*'],
  [0x0a, '9('], [0x0b, '0)'], [0x0c, '-_'], [0x0d, '=+'],
  [0x10, 'qQ'], [0x11, 'wW'], [0x12, 'eE'], [0x13, 'rR'], [0x14, 'tT'], [0x15, 'yY'], [0x16, 'uU'], [0x17, 'iI'],
  [0x18, 'oO'], [0x19, 'pP'], [0x1a, '[{'], [0x1b, ']}'],
  [0x1e, 'aA'], [0x1f, 'sS'], [0x20, 'dD'], [0x21, 'fF'], [0x22, 'gG'], [0x23, 'hH'], [0x24, 'jJ'], [0x25, 'kK'],
  [0x26, 'lL'], [0x27, ';:'], [0x28, `'"`], [0x29, '`~'], [0x2b, '\\|'],
  [0x2c, 'zZ'], [0x2d, 'xX'], [0x2e, 'cC'], [0x2f, 'vV'], [0x30, 'bB'], [0x31, 'nN'], [0x32, 'mM'], [0x33, ',<'],
  [0x34, '.>'], [0x35, '/?'], [0x39, ' '],
];
for (const [code, s] of ROWS) chars(code, s);

// Function and editing keys (keysyms 0xFFxx).
key(0x0e, 0xff08); // BackSpace
key(0x0f, 0xff09, 0xfe20); // Tab, ISO_Left_Tab (Shift-Tab)
key(0x1c, 0xff0d); // Return
key(0x01, 0xff1b); // Escape
key(0x46, 0xff14); // Scroll_Lock
key(0x54, 0xff15); // Sys_Req
ext(0x53, 0xffff); // Delete
ext(0x47, 0xff50); // Home
ext(0x4b, 0xff51); // Left
ext(0x48, 0xff52); // Up
ext(0x4d, 0xff53); // Right
ext(0x50, 0xff54); // Down
ext(0x49, 0xff55); // Prior (Page Up)
ext(0x51, 0xff56); // Next (Page Down)
ext(0x4f, 0xff57); // End
ext(0x52, 0xff63); // Insert
ext(0x37, 0xff61); // Print
ext(0x5d, 0xff67); // Menu
key(0x45, 0xff7f); // Num_Lock
// F1..F10 are 0x3b..0x44, F11 and F12 0x57, 0x58.
for (let i = 0; i < 10; i++) key(0x3b + i, 0xffbe + i);
key(0x57, 0xffc8);
key(0x58, 0xffc9);
// Modifiers.
key(0x2a, 0xffe1); // Shift_L
key(0x36, 0xffe2); // Shift_R
key(0x1d, 0xffe3); // Control_L
ext(0x1d, 0xffe4); // Control_R
key(0x3a, 0xffe5); // Caps_Lock
key(0x38, 0xffe9, 0xffe7); // Alt_L, Meta_L
ext(0x38, 0xffea, 0xffe8, 0xfe03); // Alt_R, Meta_R, ISO_Level3_Shift (AltGr)
ext(0x5b, 0xffeb); // Super_L
ext(0x5c, 0xffec); // Super_R
// Keypad.
ext(0x1c, 0xff8d); // KP_Enter
key(0x37, 0xffaa); // KP_Multiply
key(0x4e, 0xffab); // KP_Add
key(0x4a, 0xffad); // KP_Subtract
key(0x53, 0xffae, 0xff9f); // KP_Decimal, KP_Delete
ext(0x35, 0xffaf); // KP_Divide
const KEYPAD_DIGITS = [0x52, 0x4f, 0x50, 0x51, 0x4b, 0x4c, 0x4d, 0x47, 0x48, 0x49];
KEYPAD_DIGITS.forEach((code, digit) => key(code, 0xffb0 + digit));
key(0x47, 0xff95); // KP_Home
key(0x4b, 0xff96); // KP_Left
key(0x48, 0xff97); // KP_Up
key(0x4d, 0xff98); // KP_Right
key(0x50, 0xff99); // KP_Down
key(0x49, 0xff9a); // KP_Prior
key(0x51, 0xff9b); // KP_Next
key(0x4f, 0xff9c); // KP_End
key(0x4c, 0xff9d); // KP_Begin
key(0x52, 0xff9e); // KP_Insert

/** Pause has no break code: its make sequence carries Ctrl+NumLock's make and break. */
export const PAUSE_SET1 = [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5] as const;
const KEYSYM_PAUSE = 0xff13;

/**
 * The set 1 bytes for a press (`down`) or release of the key `keysym` names, or undefined
 * when the keysym is not on a PC keyboard (US layout).
 */
export function keysymScancodes(keysym: number, down: boolean): number[] | undefined {
  if (keysym === KEYSYM_PAUSE) return down ? [...PAUSE_SET1] : [];
  const k = KEYSYM_TO_KEY.get(keysym >>> 0);
  if (k === undefined) return undefined;
  const code = down ? k.code : k.code | 0x80;
  return k.extended ? [0xe0, code] : [code];
}

/**
 * The set 1 bytes for an XT keycode as QEMU's extended key event carries it: a make code
 * below 0x80, with bit 7 standing for an 0xE0 prefix. 0 (no keycode) and codes whose make
 * byte would be 0 give undefined.
 */
export function xtKeycodeScancodes(keycode: number, down: boolean): number[] | undefined {
  if (!Number.isInteger(keycode) || keycode <= 0 || keycode > 0xff) return undefined;
  const make = keycode & 0x7f;
  if (make === 0) return undefined;
  const code = down ? make : make | 0x80;
  return keycode & 0x80 ? [0xe0, code] : [code];
}
