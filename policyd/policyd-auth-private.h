/* policyd-auth-private: what policyd-auth.c's server takes from policyd-auth-proto.c. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Sets a POLICYD_AUTH_ERROR_PROTOCOL error (the connection is closed) and returns FALSE. */
gboolean policyd_auth_protocol_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* A decimal number without sign, spaces or overflow, at most max. */
gboolean policyd_auth_parse_uint(const char *text, guint max, guint *out);

G_END_DECLS
