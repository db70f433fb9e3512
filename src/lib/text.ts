// Text checks shared by the layers that read client input.

/** Whether `s` holds a C0 control character or DEL (none is meaningful in an OAuth parameter or credential). */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
