import type { LoggerOptions } from 'pino'

/**
 * pino settings for the whole process. Redaction is the safety net; the first line of defence is
 * that code never logs a secret, a key or a token (tokens appear only as fingerprints).
 */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'req.headers.cookie',
        'headers.authorization',
        'headers.Authorization',
        '*.clientSecret',
        '*.appSecret',
        '*.clientSecrets',
        '*.appSecrets',
        '*.secret',
        '*.key',
        '*.password',
        '*.access_token',
        '*.accessToken',
        '*.ust',
        '*.rejected_token',
        'clientSecret',
        'appSecret',
        'clientSecrets',
        'appSecrets',
        'accessToken',
        'access_token',
        'rejected_token',
      ],
      censor: '[redacted]',
    },
  }
}
