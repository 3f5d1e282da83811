/** Why a decoder refused its input. Stable: callers and tests match on it. */
export const DecodeErrorCode = {
  /** The input ends before the structure it announces. */
  Truncated: 'TRUNCATED',
  /** A length field is impossible (below the header, past the enclosing TLV, wrong fixed size). */
  BadLength: 'BAD_LENGTH',
  /** Padding bytes are missing or not zero. */
  BadPadding: 'BAD_PADDING',
  /** A message or parameter type this codec does not know where one it knows is required. */
  UnknownType: 'UNKNOWN_TYPE',
  /** A length above the configured maximum, refused before buffering. */
  TooLarge: 'TOO_LARGE',
  /** A field holds a value the protocol forbids. */
  BadValue: 'BAD_VALUE',
  /** A parameter the message must carry is absent. */
  MissingParameter: 'MISSING_PARAMETER',
  /** A parameter appears where the layout does not allow it. */
  BadNesting: 'BAD_NESTING',
} as const;
export type DecodeErrorCode = (typeof DecodeErrorCode)[keyof typeof DecodeErrorCode];

export interface DecodeErrorInit {
  /** Byte offset into the decoded buffer where the fault was found. */
  offset: number;
  /** TLV (parameter or message) type being decoded, when known. */
  tlvType?: number;
  cause?: unknown;
}

/** The only error a decoder in `protocols/` throws. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly code: DecodeErrorCode;
  readonly offset: number;
  readonly tlvType: number | undefined;

  constructor(code: DecodeErrorCode, message: string, init: DecodeErrorInit) {
    super(
      `${message} (offset ${init.offset}${init.tlvType === undefined ? '' : `, type 0x${init.tlvType.toString(16)}`})`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.code = code;
    this.offset = init.offset;
    this.tlvType = init.tlvType;
  }
}

/** Encoders throw this when handed a value the wire format cannot carry. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
  readonly code = 'BAD_VALUE' as const;
}
