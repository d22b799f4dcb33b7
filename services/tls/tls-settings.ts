import { z } from "zod";
import { boolSetting, intSetting, setting } from "../config/settings.js";

/** A file path, or "" for none. */
const optionalPath = z.string();

/**
 * TLS settings of the gateway (spread into `gatewaySettings`): certificate and key of each port,
 * the client CA of the agent port (mTLS) and how files are watched. A port without a certificate
 * serves cleartext, as before.
 */
export const gatewayTlsSettings = {
  tlsCertFile: setting({
    key: "tlsCertFile",
    flag: "tls-cert-file",
    env: "VOXGATE_TLS_CERT_FILE",
    description:
      'certificate chain (PEM) of the public port: set, it serves HTTPS only (ALPN h2, http/1.1); "" = cleartext',
    schema: optionalPath,
    defaultValue: "",
  }),
  tlsKeyFile: setting({
    key: "tlsKeyFile",
    flag: "tls-key-file",
    env: "VOXGATE_TLS_KEY_FILE",
    description: "private key (PEM) of the public port's certificate",
    schema: optionalPath,
    defaultValue: "",
  }),
  agentTlsCertFile: setting({
    key: "agentTlsCertFile",
    flag: "agent-tls-cert-file",
    env: "VOXGATE_AGENT_TLS_CERT_FILE",
    description:
      'certificate chain (PEM) of the agent port: set, agents must dial https:// ; "" = cleartext gRPC',
    schema: optionalPath,
    defaultValue: "",
  }),
  agentTlsKeyFile: setting({
    key: "agentTlsKeyFile",
    flag: "agent-tls-key-file",
    env: "VOXGATE_AGENT_TLS_KEY_FILE",
    description: "private key (PEM) of the agent port's certificate",
    schema: optionalPath,
    defaultValue: "",
  }),
  agentClientCaFile: setting({
    key: "agentClientCaFile",
    flag: "agent-client-ca-file",
    env: "VOXGATE_AGENT_CLIENT_CA_FILE",
    description:
      'CA (PEM) that signs agents\' client certificates: set, agents need one (mTLS); "" = no client certificates',
    schema: optionalPath,
    defaultValue: "",
  }),
  agentCertMatchId: setting({
    key: "agentCertMatchId",
    flag: "agent-cert-match-id",
    env: "VOXGATE_AGENT_CERT_MATCH_ID",
    description:
      "with mTLS, require the client certificate's CN or a DNS/URI SAN to be the agent id (else PERMISSION_DENIED)",
    schema: boolSetting,
    defaultValue: false,
  }),
  tlsPollIntervalMs: setting({
    key: "tlsPollIntervalMs",
    flag: "tls-poll-interval-ms",
    env: "VOXGATE_TLS_POLL_INTERVAL_MS",
    description:
      "interval certificate, key and CA files are checked for changes at, in ms (0 = on SIGHUP only)",
    schema: intSetting(0, 3_600_000),
    defaultValue: 2000,
  }),
};

/**
 * TLS settings of the agent (spread into `agentSettings`): whom it trusts for the gateway's
 * certificate and the client certificate it presents.
 */
export const agentTlsSettings = {
  caFile: setting({
    key: "caFile",
    flag: "ca-file",
    env: "VOXGATE_GATEWAY_CA_FILE",
    description:
      "CA certificates (PEM) trusted for an https:// gateway, besides the system store and NODE_EXTRA_CA_CERTS",
    schema: optionalPath,
    defaultValue: "",
  }),
  clientCertFile: setting({
    key: "clientCertFile",
    flag: "client-cert-file",
    env: "VOXGATE_AGENT_CLIENT_CERT_FILE",
    description:
      "client certificate (PEM) presented to an https:// gateway that asks for one (mTLS); read again on every reconnect",
    schema: optionalPath,
    defaultValue: "",
  }),
  clientKeyFile: setting({
    key: "clientKeyFile",
    flag: "client-key-file",
    env: "VOXGATE_AGENT_CLIENT_KEY_FILE",
    description: "private key (PEM) of the client certificate",
    schema: optionalPath,
    defaultValue: "",
  }),
};
