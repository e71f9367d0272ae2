/*
 * hk-milter-proto: the ops and keys of hanko-milter's admin socket (fax jobs and lists),
 * used by hanko-milter and hankoctl. docs/fax.md describes each op.
 */
#pragma once

/* ----- ops (admin: root or [milter] admin_group) ----- */

#define HK_MILTER_OP_PING          "ping" /* public */
#define HK_MILTER_OP_FAX_JOBS      "fax.jobs"
#define HK_MILTER_OP_FAX_SHOW      "fax.show"
#define HK_MILTER_OP_FAX_CANCEL    "fax.cancel"
#define HK_MILTER_OP_FAX_RESEND    "fax.resend"
#define HK_MILTER_OP_FAX_LIST_ADD  "fax.list.add"
#define HK_MILTER_OP_FAX_LIST_SHOW "fax.list.show"
#define HK_MILTER_OP_FAX_LIST_DEL  "fax.list.del"
#define HK_MILTER_OP_FAX_SEND_CERT "fax.send_cert"

/* ----- keys ----- */

#define HK_MILTER_KEY_DAEMON       "daemon"
#define HK_MILTER_KEY_VERSION      "version"
#define HK_MILTER_KEY_ID           "id"
#define HK_MILTER_KEY_LIMIT        "limit"
#define HK_MILTER_KEY_JOBS         "jobs"
#define HK_MILTER_KEY_USER         "user"
#define HK_MILTER_KEY_SENDER       "sender"
#define HK_MILTER_KEY_NOTIFY       "notify"
#define HK_MILTER_KEY_SUBJECT      "subject"
#define HK_MILTER_KEY_QUEUE_ID     "queue_id"
#define HK_MILTER_KEY_CREATED      "created" /* ISO 8601 UTC */
#define HK_MILTER_KEY_PAGES        "pages"
#define HK_MILTER_KEY_TIFF         "tiff"
#define HK_MILTER_KEY_NOTES        "notes"
#define HK_MILTER_KEY_STATE        "state" /* job: queued sending done failed partial canceled */
#define HK_MILTER_KEY_CANCELED     "canceled"
#define HK_MILTER_KEY_NOTIFIED     "notified"
#define HK_MILTER_KEY_DESTINATIONS "destinations"
#define HK_MILTER_KEY_NUMBER       "number"
#define HK_MILTER_KEY_DIAL         "dial"
#define HK_MILTER_KEY_ATTEMPTS     "attempts"
#define HK_MILTER_KEY_PAGES_SENT   "pages_sent"
#define HK_MILTER_KEY_NEXT_ATTEMPT "next_attempt" /* ISO 8601 UTC */
#define HK_MILTER_KEY_FINISHED     "finished"     /* ISO 8601 UTC */
#define HK_MILTER_KEY_RESULT       "result"       /* text of the last attempt */
#define HK_MILTER_KEY_RESENT       "resent"
#define HK_MILTER_KEY_NAME         "name"
#define HK_MILTER_KEY_NUMBERS      "numbers"
#define HK_MILTER_KEY_LISTS        "lists"
#define HK_MILTER_KEY_TO           "to"
#define HK_MILTER_KEY_SENT         "sent"
