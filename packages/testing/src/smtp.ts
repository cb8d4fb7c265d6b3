import { SMTPServer } from 'smtp-server'

export interface ReceivedMail {
  to: string[]
  subject: string
  /** The whole message as sent: headers and body. */
  text: string
  /** The body, quoted-printable decoded. */
  body: string
}

export interface TestSmtp {
  url: string
  received: ReceivedMail[]
  close(): Promise<void>
}

/** A real SMTP server on loopback that keeps every mail it receives. */
export async function startSmtp(): Promise<TestSmtp> {
  const received: ReceivedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, done) {
      let raw = ''
      stream.on('data', (chunk) => (raw += chunk))
      stream.on('end', () => {
        const subject = /^Subject: (.*)$/m.exec(raw)?.[1] ?? ''
        const encoded = raw
          .split(/\r?\n\r?\n/)
          .slice(1)
          .join('\n\n')
        const body = /^Content-Transfer-Encoding: quoted-printable/im.test(raw) ? quotedPrintable(encoded) : encoded
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), subject, text: raw, body })
        done()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as { port: number }
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((r) => server.close(() => r())) }
}

function quotedPrintable(text: string): string {
  const bytes = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => `%${hex}`)
  try {
    return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/g, '%25'))
  } catch {
    return bytes
  }
}
