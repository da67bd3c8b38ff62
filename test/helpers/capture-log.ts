import type { Logger } from '../../src/core/logger.js'

export interface LogLine {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error'
  obj: object | undefined
  msg: string | undefined
}

/** A pino-like logger that keeps every line, so a test can check what was (and was not) logged. */
export function captureLog(): Logger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = []
  const at =
    (level: LogLine['level']) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg })
    }
  return {
    lines,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => lines.map((l) => JSON.stringify(l)).join('\n'),
  }
}
