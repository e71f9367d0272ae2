/*
 * modem: the pieces of the `modem` fax plugin (hanko-fax-modem.so) shared by its files.
 *
 * The plugin talks to a fax modem on a serial line: modem-port.c owns the line (lock file,
 * termios, AT commands, every wait bounded and cancelable), modem-class1.c runs T.30 on
 * the host through spandsp (Class 1 / 1.0), modem-class2.c lets the modem run T.30 (Class
 * 2 / 2.0), modem-plugin.c is the FaxPlugin glue and the configuration.
 *
 * Must never: link hanko-common (a static, non-PIC library), block without a deadline, or
 * leave the line off-hook or the lock file behind when a send returns.
 */
#pragma once

#include "fax-plugin.h"

#include <glib.h>

G_BEGIN_DECLS

#define MODEM_DLE 0x10
#define MODEM_ETX 0x03
#define MODEM_XON 0x11
#define MODEM_SUB 0x1a
#define MODEM_CAN 0x18

typedef enum {
	MODEM_FLOW_RTSCTS,
	MODEM_FLOW_XONXOFF,
	MODEM_FLOW_NONE,
} ModemFlow;

typedef enum {
	MODEM_CLASS_AUTO,
	MODEM_CLASS_1,
	MODEM_CLASS_1_0,
	MODEM_CLASS_2,
	MODEM_CLASS_2_0,
} ModemClass;

/* [fax.modem], read once at open. */
typedef struct {
	char *device;
	guint speed;
	ModemFlow flow;
	char *lock_dir; /* "": no lock file */
	char *init;
	char *reset;
	ModemClass fclass;
	char *dial_command;
	gint64 command_timeout_ms;
	gint64 answer_timeout_ms;
	gint64 page_timeout_ms;
	char *station_id;
	gboolean ecm;
	guint max_rate;
} ModemConfig;

/* What a wait on the line ended with. */
typedef enum {
	MODEM_WAIT_OK,
	MODEM_WAIT_TIMEOUT,
	MODEM_WAIT_CANCELED,
	MODEM_WAIT_INTERRUPTED, /* the idle hook asked to stop waiting */
	MODEM_WAIT_IO,          /* the line is gone */
} ModemWait;

/* Called at least every MODEM_IDLE_MS while the port waits; TRUE interrupts the wait. */
typedef gboolean (*ModemIdleFunc)(gpointer data);
#define MODEM_IDLE_MS 20

typedef struct {
	const ModemConfig *config;
	int fd;
	char *lock_path; /* NULL: no lock held */
	gint *cancel;    /* atomic, owned by the plugin */
	ModemIdleFunc idle;
	gpointer idle_data;
	guint8 in[4096];
	gsize in_len, in_pos;
	gboolean xon_active; /* IXON on while page data goes out (flow = xonxoff) */
	gboolean alive;      /* the modem answered the probe: there may be a call to end */
	gboolean winding_up; /* ending a call: waits no longer stop at a cancel */
	char *error;         /* what went wrong on the line, for the result text */
} ModemPort;

/* modem-port.c */
gboolean modem_port_open(ModemPort *port, const ModemConfig *config, gint *cancel, char **error);
void modem_port_close(ModemPort *port);
ModemWait modem_port_getc(ModemPort *port, gint64 deadline_us, int *c);
ModemWait modem_port_write(ModemPort *port, const void *data, gsize len, gint64 deadline_us);
ModemWait modem_port_write_str(ModemPort *port, const char *text, gint64 deadline_us);
ModemWait modem_port_read_line(ModemPort *port, gint64 deadline_us, char **line);
ModemWait modem_port_command(ModemPort *port, const char *command, gint64 timeout_ms,
                             GPtrArray *info, char **final);
ModemWait modem_port_wait_final(ModemPort *port, gint64 deadline_us, GPtrArray *info, char **final);
void modem_port_flush_input(ModemPort *port);
void modem_port_set_xon(ModemPort *port, gboolean on);
gboolean modem_port_probe(ModemPort *port, char **error);
void modem_port_hangup(ModemPort *port);
gboolean modem_is_final(const char *line);
gint64 modem_deadline(gint64 timeout_ms);

/* What a class driver hands back: the plugin's result plus what the text is made of. */
typedef struct {
	FaxResultCode code;
	guint pages_sent;
	char *text;
} ModemOutcome;

typedef struct {
	ModemPort *port;
	const ModemConfig *config;
	const FaxSendRequest *request;
	FaxProgressFunc progress;
	gpointer progress_data;
	gint *cancel;
	gboolean class_1_0; /* +FCLASS=1.0 (or 2.0) rather than 1 (or 2) */
} ModemCall;

void modem_report(const ModemCall *call, FaxPhase phase, guint page, const char *text);
void modem_outcome_set(ModemOutcome *out, FaxResultCode code, guint pages, char *text);
/* The outcome of a dial result that is not CONNECT ("BUSY", "NO CARRIER", ...). */
void
modem_dial_outcome(const ModemCall *call, const char *final, ModemWait wait, ModemOutcome *out);
/* The outcome of a wait that did not end in a result code. */
void modem_wait_outcome(const ModemCall *call, ModemWait wait, const char *doing, guint pages,
                        ModemOutcome *out);

/* modem-class1.c */
void modem_class1_send(const ModemCall *call, ModemOutcome *out);

/* modem-class2.c */
void modem_class2_send(const ModemCall *call, ModemOutcome *out);
const char *modem_class2_hangup_text(guint code, gboolean hex);

/* A compression name for the result text: MH, MR, MMR. */
const char *modem_coding_name(int t4_compression);

G_END_DECLS
