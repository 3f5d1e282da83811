/**
 * RFC 5353 PE checksum, as RSPLIB computes it: the 16-bit one's-complement
 * sum, over every PE a registrar owns, of the PE's pool handle (as 16-bit
 * big-endian words, an odd last byte padded with a zero byte) followed by its
 * 32-bit PE identifier (two big-endian words; it starts a fresh word, it does
 * not continue an odd handle). The final value is the complement of the folded
 * sum, so an owner with no PEs has checksum 0xffff.
 *
 * We keep the exact (unfolded) integer sum per owner: adding and removing a PE
 * is then plain + and -, and folding at the end gives the true one's-complement
 * result (a JS number holds it exactly far past 10^9 PEs).
 */

/** Sum of the handle's 16-bit big-endian words; an odd last byte is the high byte of a zero-padded word. */
export function handleWordSum(handle: Uint8Array): number {
  let sum = 0;
  const even = handle.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (handle[i]! << 8) | handle[i + 1]!;
  if (even !== handle.length) sum += handle[even]! << 8;
  return sum;
}

/** One PE's unfolded contribution, given its pool's handleWordSum. */
export function peChecksumTerm(handleSum: number, identifier: number): number {
  return handleSum + (identifier >>> 16) + (identifier & 0xffff);
}

/** Folds an exact sum to 16 bits with end-around carry and complements it. */
export function finishChecksum(sum: number): number {
  let folded = sum === 0 ? 0 : sum % 0xffff;
  if (folded === 0 && sum !== 0) folded = 0xffff;
  return ~folded & 0xffff;
}
