export { certificateIdentities } from "./cert-identity.js";
export {
  type ClientTlsOptions,
  createClientChannelCredentials,
  type ServerCertificateSeen,
} from "./grpc-channel-credentials.js";
export { ReloadingServerCredentials } from "./grpc-server-credentials.js";
export {
  createTlsFiles,
  isTlsFilesError,
  type TlsFilePaths,
  type TlsFiles,
  TlsFilesError,
  type TlsFilesOptions,
  type TlsMaterial,
} from "./tls-files.js";
export { agentTlsSettings, gatewayTlsSettings } from "./tls-settings.js";
export { defaultCaCertificates, trustedCaCertificates } from "./trust-store.js";
