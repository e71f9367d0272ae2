/*
 * hk-certd-proto: every op and key of hanko-certd's socket, in one place.
 *
 * Senders (hankoctl, policyd, milter) and the receiver (certd) use these names and
 * nothing else, so a misspelt key is a compile error, not a silent mismatch.
 * docs/ipc.md describes each op: params, result, errors and required role.
 * Binary values (DER, PKCS#12) travel base64-encoded in keys ending in _base64.
 */
#pragma once

/* ----- ops ----- */

#define HK_CERTD_OP_PING         "ping"         /* public */
#define HK_CERTD_OP_EVENTS_WATCH "events.watch" /* service */
#define HK_CERTD_OP_AUDIT_LIST   "audit.list"   /* admin */

#define HK_CERTD_OP_CA_INIT   "ca.init"   /* admin */
#define HK_CERTD_OP_CA_IMPORT "ca.import" /* admin */
#define HK_CERTD_OP_CA_SHOW   "ca.show"   /* service */
#define HK_CERTD_OP_CA_EXPORT "ca.export" /* service: the CA certificate */
#define HK_CERTD_OP_CA_CRL    "ca.crl"    /* service: the current CRL */

#define HK_CERTD_OP_CERT_ISSUE  "cert.issue"  /* admin: client/S/MIME certificate */
#define HK_CERTD_OP_CERT_LIST   "cert.list"   /* admin */
#define HK_CERTD_OP_CERT_SHOW   "cert.show"   /* admin */
#define HK_CERTD_OP_CERT_P12    "cert.p12"    /* admin */
#define HK_CERTD_OP_CERT_REVOKE "cert.revoke" /* admin */
#define HK_CERTD_OP_CERT_LOOKUP "cert.lookup" /* service */
#define HK_CERTD_OP_CSR_CREATE  "csr.create"  /* admin: server certificate request */
#define HK_CERTD_OP_CERT_IMPORT "cert.import" /* admin: server certificate */
#define HK_CERTD_OP_CERT_EXPORT "cert.export" /* admin: server certificate + key */
#define HK_CERTD_OP_CERT_ASSIGN "cert.assign" /* admin */
/* service, and only root or [certd] identity_users: the gateway's key and chain */
#define HK_CERTD_OP_SERVICE_IDENTITY "service.identity"

#define HK_CERTD_OP_USER_ADD    "user.add"    /* admin */
#define HK_CERTD_OP_USER_PASSWD "user.passwd" /* admin */
#define HK_CERTD_OP_USER_LIST   "user.list"   /* admin */
#define HK_CERTD_OP_USER_SHOW   "user.show"   /* admin */
#define HK_CERTD_OP_USER_DEL    "user.del"    /* admin */
#define HK_CERTD_OP_USER_SET    "user.set"    /* admin */
#define HK_CERTD_OP_USER_IMPORT "user.import" /* admin */
#define HK_CERTD_OP_USER_LOOKUP "user.lookup" /* service: attributes by name or email */
#define HK_CERTD_OP_AUTH_VERIFY "auth.verify" /* service: SMTP AUTH password */
#define HK_CERTD_OP_FAX_VERIFY  "fax.verify"  /* service: fax password */

#define HK_CERTD_OP_SMIME_REGISTER   "smime.register"   /* service */
#define HK_CERTD_OP_SMIME_LOOKUP     "smime.lookup"     /* service */
#define HK_CERTD_OP_SMIME_UNREGISTER "smime.unregister" /* service */

/* ----- events (on an events.watch stream) ----- */

#define HK_CERTD_EV_CERT_ISSUED   "cert.issued"
#define HK_CERTD_EV_CERT_REVOKED  "cert.revoked"
#define HK_CERTD_EV_CERT_CHANGED  "cert.changed"  /* imported, requested, status change */
#define HK_CERTD_EV_CERT_ASSIGNED "cert.assigned" /* service, name */
#define HK_CERTD_EV_USER_CHANGED  "user.changed"  /* name */
#define HK_CERTD_EV_CA_CHANGED    "ca.changed"
#define HK_CERTD_EV_CRL_UPDATED   "crl.updated"
#define HK_CERTD_EV_SMIME_CHANGED "smime.changed" /* email */

/* ----- keys ----- */

/* ping */
#define HK_CERTD_KEY_PONG    "pong"    /* bool, always true */
#define HK_CERTD_KEY_DAEMON  "daemon"  /* "hanko-certd" */
#define HK_CERTD_KEY_VERSION "version" /* "0.1.0" */
#define HK_CERTD_KEY_UPTIME  "uptime"  /* seconds since start */
#define HK_CERTD_KEY_ROLES   "roles"   /* ["public", "service", "admin"] of the caller */

/* identities and names */
#define HK_CERTD_KEY_ID          "id"   /* serial, fingerprint or server certificate name */
#define HK_CERTD_KEY_NAME        "name" /* user or server certificate name */
#define HK_CERTD_KEY_USER        "user" /* user name */
#define HK_CERTD_KEY_CN          "cn"
#define HK_CERTD_KEY_EMAIL       "email"
#define HK_CERTD_KEY_EMAILS      "emails"             /* array of strings */
#define HK_CERTD_KEY_SERIAL      "serial"             /* upper-case hex, no colons */
#define HK_CERTD_KEY_FINGERPRINT "fingerprint"        /* SHA-256 of the certificate, AB:CD:... */
#define HK_CERTD_KEY_PUBKEY_FP   "pubkey_fingerprint" /* SHA-256 of the SPKI, AB:CD:... */
#define HK_CERTD_KEY_ISSUER      "issuer"
#define HK_CERTD_KEY_SUBJECT     "subject"
#define HK_CERTD_KEY_KIND        "kind" /* "client" | "server" */

/* certificate parameters */
#define HK_CERTD_KEY_KEY        "key" /* "rsa:2048" ... "ec:p384" */
#define HK_CERTD_KEY_DAYS       "days"
#define HK_CERTD_KEY_MEMO       "memo"
#define HK_CERTD_KEY_PROFILE    "profile"    /* "client" | "smime" | "both" */
#define HK_CERTD_KEY_P12_FORMAT "p12_format" /* "compat" | "modern" */
#define HK_CERTD_KEY_COUNTRY    "country"
#define HK_CERTD_KEY_STATE      "state"
#define HK_CERTD_KEY_LOCALITY   "locality"
#define HK_CERTD_KEY_ORG        "org"
#define HK_CERTD_KEY_OU         "ou"
#define HK_CERTD_KEY_SAN        "san" /* array of "DNS:host" / "IP:addr" / "email:a@b" */

/* state */
#define HK_CERTD_KEY_STATUS     "status"   /* valid revoked expired requested unused in_use */
#define HK_CERTD_KEY_SERVICES   "services" /* array: smtpd smtp submission gateway */
#define HK_CERTD_KEY_SERVICE    "service"
#define HK_CERTD_KEY_NOT_BEFORE "not_before"    /* ISO 8601 UTC */
#define HK_CERTD_KEY_NOT_AFTER  "not_after"     /* ISO 8601 UTC */
#define HK_CERTD_KEY_CREATED    "created"       /* ISO 8601 UTC */
#define HK_CERTD_KEY_REVOKED_AT "revoked_at"    /* ISO 8601 UTC */
#define HK_CERTD_KEY_REASON     "reason"        /* revocation reason, auth failure reason */
#define HK_CERTD_KEY_EXPIRING   "expiring_days" /* cert.list: expiring within N days */
#define HK_CERTD_KEY_CERTS      "certs"         /* array of certificate objects */
#define HK_CERTD_KEY_USERS      "users"         /* array of user objects */
#define HK_CERTD_KEY_WARNINGS   "warnings"      /* array of strings */
#define HK_CERTD_KEY_DIR        "dir"           /* where certd keeps the certificate's files */

/* material */
#define HK_CERTD_KEY_CERT_PEM     "cert_pem" /* one certificate, or leaf + chain */
#define HK_CERTD_KEY_KEY_PEM      "key_pem"  /* a private key: admin ops only, never logged */
#define HK_CERTD_KEY_CSR_PEM      "csr_pem"
#define HK_CERTD_KEY_CRL_PEM      "crl_pem"
#define HK_CERTD_KEY_DER_BASE64   "der_base64"
#define HK_CERTD_KEY_P12_BASE64   "p12_base64"
#define HK_CERTD_KEY_P12_PASSWORD "p12_password" /* generated; shown to admins */
#define HK_CERTD_KEY_PASSPHRASE   "passphrase"   /* of an imported encrypted key */
#define HK_CERTD_KEY_PASSWORD     "password"
#define HK_CERTD_KEY_FORMAT       "format"     /* "pem" | "der" | "bundle" | "p12" */
#define HK_CERTD_KEY_KEY_FORMAT   "key_format" /* "pkcs1" | "pkcs8" */
#define HK_CERTD_KEY_PEM          "pem"

/* CRL */
#define HK_CERTD_KEY_CRL_NUMBER  "crl_number"
#define HK_CERTD_KEY_THIS_UPDATE "this_update"
#define HK_CERTD_KEY_NEXT_UPDATE "next_update"

/* assign */
#define HK_CERTD_KEY_FILES       "files"  /* array of paths written */
#define HK_CERTD_KEY_RELOAD      "reload" /* {command, exit_status, output} */
#define HK_CERTD_KEY_COMMAND     "command"
#define HK_CERTD_KEY_EXIT_STATUS "exit_status"
#define HK_CERTD_KEY_OUTPUT      "output"
#define HK_CERTD_KEY_TIMED_OUT   "timed_out" /* bool: killed after reload_timeout */

/* users */
#define HK_CERTD_KEY_ATTR             "key"               /* user.set: attribute name */
#define HK_CERTD_KEY_VALUE            "value"             /* user.set: attribute value */
#define HK_CERTD_KEY_REQUIRE_SIG      "require_signature" /* bool */
#define HK_CERTD_KEY_FAX_ALLOWED      "fax_allowed"       /* bool */
#define HK_CERTD_KEY_FAX_PASSWORD     "fax_password"      /* write only */
#define HK_CERTD_KEY_HAS_PASSWORD     "has_password"      /* bool */
#define HK_CERTD_KEY_HAS_FAX_PASSWORD "has_fax_password"  /* bool */
#define HK_CERTD_KEY_PASSWD_FILE      "passwd_file"       /* user.import: file content */
#define HK_CERTD_KEY_ADDED            "added"
#define HK_CERTD_KEY_UPDATED          "updated"
#define HK_CERTD_KEY_SKIPPED          "skipped"
#define HK_CERTD_KEY_ERRORS           "errors"
#define HK_CERTD_KEY_LINE             "line" /* user.import errors: line number */
#define HK_CERTD_KEY_OK               "ok"   /* auth.verify / fax.verify: bool */

/* audit */
#define HK_CERTD_KEY_SINCE   "since" /* unix seconds */
#define HK_CERTD_KEY_LIMIT   "limit"
#define HK_CERTD_KEY_ENTRIES "entries"
#define HK_CERTD_KEY_TIME    "time"
#define HK_CERTD_KEY_UID     "uid"
#define HK_CERTD_KEY_PID     "pid"
#define HK_CERTD_KEY_OP      "op"
#define HK_CERTD_KEY_OUTCOME "outcome" /* "ok" or the error code */
#define HK_CERTD_KEY_MESSAGE "message"

/* values */
#define HK_CERTD_STATUS_VALID     "valid"
#define HK_CERTD_STATUS_REVOKED   "revoked"
#define HK_CERTD_STATUS_EXPIRED   "expired"
#define HK_CERTD_STATUS_REQUESTED "requested"
#define HK_CERTD_STATUS_UNUSED    "unused"
#define HK_CERTD_STATUS_IN_USE    "in_use"
