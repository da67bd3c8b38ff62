import { connect, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'

export interface RawConnection {
  socket: Socket
  /** Everything the server sent, once it has closed the connection. */
  closed: Promise<string>
}

/**
 * A plain TCP connection to `port`, for what HTTP clients cannot send (no Host, half a request).
 * Resolves once connected; destroyed when the test ends.
 */
export function rawConnect(port: number, send = ''): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      received += d
    })
    const closed = new Promise<string>((done) => socket.once('close', () => done(received)))
    // A peer that resets the connection still counts as closed; its error is not the test's.
    socket.on('error', () => {})
    socket.once('connect', () => {
      if (send) socket.write(send)
      resolve({ socket, closed })
    })
    socket.once('error', reject)
    onTestFinished(() => void socket.destroy())
  })
}

/** The JSON body of a raw HTTP answer, with its status line. */
export function parseAnswer(raw: string): { status: number; headers: string; body: unknown } {
  const at = raw.indexOf('\r\n\r\n')
  const head = raw.slice(0, at)
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    headers: head.toLowerCase(),
    body: JSON.parse(raw.slice(at + 4)),
  }
}
