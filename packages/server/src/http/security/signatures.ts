/**
 * Request authentication at the HTTP edge: optional bearer API keys and
 * the webhook signature schemes of Twilio, Standard Webhooks and SendGrid,
 * with the signing halves the tests and the CLI use to make test webhooks.
 * Each check returns a {@link Verification} and never throws on bad input;
 * they throw only on bad configuration, which start-up validates.
 */
export {
  type ApiKey,
  type BearerCheck,
  type BearerFailure,
  bearerChallenge,
  checkBearer,
  createApiKey,
  MIN_API_KEY_LENGTH,
  parseApiKeys,
} from './api-keys.js'
export {
  parsePublicBaseUrl,
  publicUrl,
  type PublicUrlOptions,
} from './public-url.js'
export {
  generateSendGridKeyPair,
  parseSendGridPublicKey,
  SENDGRID_SIGNATURE_HEADERS,
  type SendGridFailure,
  type SendGridKeyPair,
  signSendGridRequest,
  type SignSendGridOptions,
  verifySendGridSignature,
  type VerifySendGridOptions,
} from './sendgrid-signature.js'
export {
  STANDARD_WEBHOOK_HEADERS,
  type SignStandardWebhookOptions,
  signStandardWebhook,
  type StandardWebhookFailure,
  standardWebhookKey,
  verifyStandardWebhook,
  type VerifyStandardWebhookOptions,
} from './standard-webhooks.js'
export {
  DEFAULT_TOLERANCE_SECONDS,
  type TimestampFailure,
} from './timestamp-window.js'
export {
  type SignTwilioOptions,
  signTwilioRequest,
  TWILIO_SIGNATURE_HEADER,
  twilioBodyHash,
  type TwilioFailure,
  type TwilioParams,
  type TwilioRequest,
  twilioSignature,
  verifyTwilioSignature,
  type VerifyTwilioOptions,
} from './twilio-signature.js'
export type { HeaderBag, Rejection, Verification } from './verification.js'
