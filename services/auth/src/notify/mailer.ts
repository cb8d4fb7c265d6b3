import nodemailer from 'nodemailer'
import type { Logger } from 'pino'

export interface Mail {
  to: string[]
  subject: string
  text: string
}

export interface Mailer {
  send(mail: Mail): Promise<void>
}

/**
 * SMTP through nodemailer when `smtpUrl` is set (e.g. smtp://user:pass@host:587);
 * otherwise every mail is written to the log, so a development setup shows what
 * would have been sent. Mails never carry a secret.
 */
export function createMailer(options: { smtpUrl: string | undefined; from: string; logger: Logger }): Mailer {
  const { smtpUrl, from, logger } = options
  if (!smtpUrl) {
    return {
      async send(mail) {
        logger.info({ mail: { from, ...mail } }, 'mail (no SMTP configured; logged instead)')
      },
    }
  }
  const transport = nodemailer.createTransport(smtpUrl)
  return {
    async send(mail) {
      if (mail.to.length === 0) {
        logger.warn({ subject: mail.subject }, 'mail has no recipients; not sent')
        return
      }
      await transport.sendMail({ from, to: mail.to, subject: mail.subject, text: mail.text })
    },
  }
}
