import { RSerPoolError, StateError } from '../errors.js';

/** An ENRP message that does not decode; `cause` is the DecodeError. */
export class EnrpMalformedError extends RSerPoolError {
  override readonly name = 'EnrpMalformedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RSP_ERR_ENRP_MALFORMED', message, options);
  }
}

/** A message other than a presence from a registrar not in our peer table. */
export class EnrpUnknownSenderError extends RSerPoolError {
  override readonly name = 'EnrpUnknownSenderError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_UNKNOWN_SENDER', message);
  }
}

/** A message addressed to another registrar, or a connection whose sender changed id. */
export class EnrpMisaddressedError extends RSerPoolError {
  override readonly name = 'EnrpMisaddressedError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_MISADDRESSED', message);
  }
}

/** A handle update or handle table entry for a PE the sender does not own. */
export class EnrpNotOwnerError extends RSerPoolError {
  override readonly name = 'EnrpNotOwnerError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_NOT_OWNER', message);
  }
}

/** A takeover of a registrar we still hear from (or of ourselves). */
export class EnrpTakeoverRefusedError extends RSerPoolError {
  override readonly name = 'EnrpTakeoverRefusedError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_TAKEOVER_REFUSED', message);
  }
}

/** The handlespace refused a PE a peer sent (inconsistent policy, bad values). */
export class EnrpRejectedEntryError extends RSerPoolError {
  override readonly name = 'EnrpRejectedEntryError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_REJECTED_ENTRY', message);
  }
}

/** A peer sent an ENRP_ERROR. */
export class EnrpPeerError extends RSerPoolError {
  override readonly name = 'EnrpPeerError';
  constructor(message: string) {
    super('RSP_ERR_ENRP_PEER_ERROR', message);
  }
}

/** start() on a running server, or a bad init. */
export class EnrpStateError extends StateError {
  override readonly name: string = 'EnrpStateError';
  constructor(message: string) {
    super(message);
  }
}
