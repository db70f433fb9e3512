// Text checks shared by the layers that read client input.

/** Whether `s` holds a C0 control character or DEL (none is meaningful in an OAuth parameter or credential). */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * `s` cut to at most `max` UTF-16 units (never inside a surrogate pair), with an ellipsis when cut: for echoing a
 * caller's value inside an error message without letting the value decide the message's size.
 */
export function shorten(s: string, max = 64): string {
  if (s.length <= max) return s;
  let end = max;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${s.slice(0, end)}…`;
}
