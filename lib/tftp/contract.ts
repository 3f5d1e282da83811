/**
 * The contract between the TFTP pool element (server.ts) and the
 * RSerPool-aware TFTP client / gateway (client.ts, gateway.ts).
 *
 * - A client asks for state cookies with the RRQ option `rserpool-cookie`
 *   whose value is the number of blocks between cookies (0: the PE's
 *   default). The PE acknowledges it in its OACK with the interval it uses.
 * - The PE sends each cookie as one RFC 5352 ASAP_COOKIE message (a Cookie
 *   parameter with opaque bytes) in a UDP datagram from the transfer's port
 *   to the client's port. A datagram whose first byte is 0 is TFTP (opcodes
 *   1..6), anything else is ASAP.
 * - A cookie names the next block the client needs: the PE sends one when an
 *   ACK takes the acknowledged block across a multiple of the interval, and
 *   one before the first DATA, so `next` is never past what the client holds.
 *   The client keeps the cookie with the highest next block.
 * - Failover: the client sends ASAP_COOKIE_ECHO (the Cookie parameter as
 *   received) as a datagram to another PE's TFTP port. That PE checks it and,
 *   from a new port (the transfer's TID), sends an OACK with the options the
 *   cookie names; once the client ACKs block 0 (so a spoofed echo costs one
 *   small packet), DATA from block `next` on, and goes on sending cookies. A cookie it
 *   refuses gets a TFTP ERROR, code 0, whose message starts with
 *   COOKIE_ERROR_PREFIX and says why.
 * - Leaving (a PE stopping, or asked to leave): to each client whose
 *   transfer can resume the PE sends, from the transfer's port, a cookie
 *   naming the block after the last one acknowledged, an ASAP_BUSINESS_CARD
 *   listing the other PEs of the pool (when it could resolve them), and a
 *   TFTP ERROR, code 0, whose message starts with LEAVING_ERROR_PREFIX. The
 *   client fails over at once (to the card's PEs first) without reporting the
 *   PE unreachable; requests that reach a leaving PE get the same ERROR.
 * - Make-before-break: a leaving PE that has a card sends the cookie and the
 *   card first and goes on serving for up to a second. A client meanwhile
 *   echoes the cookie to a PE of the card; once that PE's OACK comes, it
 *   sends the leaving PE a TFTP ERROR (code 0, MOVED_ERROR_TEXT), which ends
 *   that transfer, and answers the OACK. A client that has not moved by then
 *   gets the cookie, the card and the leaving ERROR as above.
 * - A PE's OACK to a download's cookie echo names RESUME_ACK_OPTION (value
 *   1): the client may answer it with the ACK of the last block it holds
 *   (absolute block in [next - 1, next + 65534], never 0 on the wire unless
 *   it is next - 1) instead of ACK 0, and the PE sends from the block after
 *   it. ACK 0 still means from `next`.
 * - Block numbers on the wire are the absolute block number mod 65536 (block 0
 *   follows block 65535, as tftp-hpa and curl expect).
 * - A netascii download's cookies count blocks of the converted text: every
 *   PE converts a file alike, so the next PE converts it and starts at the
 *   cookie's block.
 * - Uploads: a client asks for cookies with the same option in its WRQ
 *   (octet only). The PE sends a cookie each time the bytes it has written
 *   and synced pass a multiple of max(interval x blksize, 4 MiB); it names
 *   the upload's temporary file and `next`, the block after those bytes
 *   (so (next - 1) x blksize bytes are on disk), never past what the client
 *   sent. This resumes only at PEs serving the same root (shared storage).
 *   On failover the client sends the echo as for a download; the PE checks
 *   it (sealed, client address, expiry; the path under its root, the
 *   temporary file a regular file there of at least that many bytes),
 *   renames the file to a tag of its own, cuts it to (next - 1) x blksize
 *   bytes, and answers with an OACK of the cookie's options; the client then
 *   sends DATA from block `next`, and the PE's first cookie names the file
 *   by its new tag. A refused echo gets the cookie ERROR and the client
 *   starts over with a WRQ to that PE. A leaving PE syncs what it received
 *   and sends the cookie naming the block after it with the card and the
 *   leaving ERROR; its temporary file stays.
 */
export const COOKIE_OPTION = 'rserpool-cookie';
/** Blocks between cookies when the client leaves it to the PE. */
export const DEFAULT_COOKIE_INTERVAL = 256;
export const COOKIE_ERROR_PREFIX = 'cookie refused: ';
export const LEAVING_ERROR_PREFIX = 'pool element leaving';
/** A client's ERROR to a leaving PE: it goes on at another PE. */
export const MOVED_ERROR_TEXT = 'moved to another pool element';
export const RESUME_ACK_OPTION = 'rserpool-resume-ack';
/** The standard TFTP port is privileged; pool elements default to this one. */
export const DEFAULT_TFTP_PORT = 6969;
/** ASAP/TFTP demultiplexing on one UDP path. */
export function isAsapDatagram(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] !== 0;
}
