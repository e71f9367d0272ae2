/*
 * fax-plugin: the fax backend plugin API, version 1.
 *
 * A backend sends one job's pages (a TIFF Class F file) to one number and reports progress.
 * The `file` backend is built into hanko-milter; others are GModules installed in
 * ${libdir}/hanko/fax/ as hanko-fax-NAME.so that export
 *
 *     const FaxPlugin *hanko_fax_plugin(void);
 *
 * hanko-milter refuses a plugin whose api_version differs from FAX_PLUGIN_API_VERSION.
 * Configuration: the plugin's keys live in hanko.conf section [fax.NAME], read through the
 * host's accessors (the section's key table is part of hanko-milter's, so typos are caught
 * when the file is read).
 *
 * Threads: open and close run in the main thread; send runs in the queue's thread, one
 * send at a time per plugin instance; cancel may be called from any thread while send
 * runs, and makes it return FAX_RESULT_CANCELED soon.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define FAX_PLUGIN_API_VERSION 1
#define FAX_PLUGIN_SYMBOL      "hanko_fax_plugin"

typedef enum {
	FAX_PHASE_DIALING,
	FAX_PHASE_NEGOTIATING, /* T.30 phase B */
	FAX_PHASE_PAGE,        /* sending page n of m */
	FAX_PHASE_HANGUP,
} FaxPhase;

typedef enum {
	FAX_RESULT_OK,
	FAX_RESULT_BUSY,      /* retried */
	FAX_RESULT_NO_ANSWER, /* retried */
	FAX_RESULT_FAILED,    /* the call failed (no carrier, T.30 error): retried */
	FAX_RESULT_REFUSED,   /* will never work (no fax at that number, bad number): not retried */
	FAX_RESULT_LOCAL,     /* our side (modem gone, outbox unwritable): retried */
	FAX_RESULT_CANCELED,
} FaxResultCode;

typedef struct {
	FaxPhase phase;
	guint page;  /* 1-based, FAX_PHASE_PAGE */
	guint pages; /* of the document */
	const char *text;
} FaxProgress;

typedef void (*FaxProgressFunc)(const FaxProgress *progress, gpointer user_data);

typedef struct {
	gint64 job;
	const char *number; /* canonical, as the user wrote it minus separators */
	const char *dial;   /* what to dial */
	const char *tiff;   /* path of the pages */
	guint pages;
	const char *station_id; /* our TSI / local id; may be "" */
	const char *header;     /* header line text (modems that print their own); may be "" */
} FaxSendRequest;

typedef struct {
	FaxResultCode code;
	guint pages_sent;
	char *text; /* what happened, for the notification: "busy", "sent 3 pages in 41 s" */
} FaxSendResult;

/* What the host gives a plugin: its [fax.NAME] section, typed. */
typedef struct _FaxPluginHost FaxPluginHost;
struct _FaxPluginHost {
	const char *section;
	const char *(*get_string)(const FaxPluginHost *host, const char *key);
	gint64 (*get_int)(const FaxPluginHost *host, const char *key);
	gboolean (*get_bool)(const FaxPluginHost *host, const char *key);
	gint64 (*get_duration_ms)(const FaxPluginHost *host, const char *key);
	gpointer host_data;
};

typedef struct {
	guint api_version; /* FAX_PLUGIN_API_VERSION */
	const char *name;  /* "file", "modem" */
	gpointer (*open)(const FaxPluginHost *host, GError **error);
	/* Blocking; result->text is g_malloc'd by the plugin. */
	void (*send)(gpointer self, const FaxSendRequest *request, FaxProgressFunc progress,
	             gpointer progress_data, FaxSendResult *result);
	void (*cancel)(gpointer self);
	void (*close)(gpointer self);
} FaxPlugin;

/* The built-in backend: writes OUTBOX/<job>-<number>.tif ([fax.file] outbox). */
const FaxPlugin *fax_plugin_file(void);

/* A backend by name: "file", or hanko-fax-NAME.so from dir. */
const FaxPlugin *fax_plugin_load(const char *name, const char *dir, GError **error);

G_END_DECLS
