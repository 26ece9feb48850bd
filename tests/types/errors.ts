// Errors as TypeScript sees them (types/progress-outbox.d.ts declares:
// 
//   export interface OutboxError extends Error { code: OutboxErrorCode }
//   export function isOutboxError(e: unknown): e is OutboxError;
import { Outbox, isOutboxError, type OutboxError, type OutboxErrorCode } from "progress-outbox";

export async function saveOrExplain(outbox: Outbox, input: unknown): Promise<string> {
  try {
    await outbox.saveWeight(Number(input));
    return "saved";
  } catch (e) {
    // e is `unknown` under --strict; the guard narrows it without a cast.
    if (isOutboxError(e)) {
      const err: OutboxError = e;
      const asError: Error = e; // an OutboxError is an Error (TypeError, RangeError or Error)
      const code: OutboxErrorCode = e.code;
      switch (e.code) {
        case "INVALID_TYPE":
        case "OUT_OF_RANGE":
          return `check the value: ${e.message}`;
        case "NO_USER":
          return "log in first";
        default:
          return `${code}: ${asError.message} (${err.name})`;
      }
    }
    throw e;
  }
}

export function wrong(e: unknown, err: Error): void {
  // @ts-expect-error a caught value is unknown: narrow it with isOutboxError first
  void e.code;
  // @ts-expect-error not every Error has a code: only an OutboxError
  const fromError: OutboxErrorCode = err.code;
  // @ts-expect-error the codes are a closed set
  const unknownCode: OutboxErrorCode = "NOT_A_CODE";
  if (isOutboxError(e)) {
    // @ts-expect-error a code is a string, never a number
    const numeric: number = e.code;
    void numeric;
  }
  void [fromError, unknownCode];
}
