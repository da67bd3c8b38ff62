import type { StoreLog } from '../../src/store/redis.js'

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error'
  obj: object | undefined
  msg: string | undefined
}

/** A pino-like logger that keeps every line, so a test can check what was (and was not) logged. */
export function captureLog(): StoreLog & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = []
  const at =
    (level: LogLine['level']) =>
    (objOrMsg: object | string, msg?: string): void => {
      if (typeof objOrMsg === 'string') lines.push({ level, obj: undefined, msg: objOrMsg })
      else lines.push({ level, obj: objOrMsg, msg })
    }
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => lines.map((l) => JSON.stringify(l)).join('\n'),
  }
}
