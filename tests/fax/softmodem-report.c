/*
 * softmodem-report: hk-softmodem's --report file, one JSON object per finished call on a
 * line of its own, for the tests and the benchmark (line time counted in audio samples).
 *
 * Talks to: the report file (append only).
 * Must never: write a partial line (each line goes out in one write), or truncate the file.
 */
#include "softmodem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *
sm_answer_name(SmAnswer answer)
{
	static const char *const names[] = {
	        [SM_ANSWER_NORMAL] = "normal",
	        [SM_ANSWER_BUSY] = "busy",
	        [SM_ANSWER_NOANSWER] = "noanswer",
	};

	return names[answer];
}

static void
append_json_string(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			g_string_append_printf(out, "\\%c", c);
		else if (c < 0x20)
			g_string_append_printf(out, "\\u%04x", c);
		else
			g_string_append_c(out, (char)c);
	}
	g_string_append_c(out, '"');
}

char *
sm_report_json(const SmReport *r)
{
	GString *out = g_string_new(NULL);

	g_string_append_printf(out, "{\"call\":%d,\"answer\":\"%s\",\"result\":\"%s\",", r->call,
	                       sm_answer_name(r->answer), r->result);
	g_string_append_printf(out, "\"pages\":%d,\"coding\":\"%s\",", r->pages,
	                       r->coding != NULL ? r->coding : "");
	g_string_append_printf(out, "\"line_samples\":%" G_GINT64_FORMAT ",", r->line_samples);
	g_string_append_printf(out, "\"line_seconds\":%.3f,\"rate\":%d,\"ecm\":%s,",
	                       (double)r->line_samples / SM_SAMPLE_RATE, r->rate,
	                       r->ecm ? "true" : "false");
	g_string_append_printf(out, "\"t30_status\":%d,\"t30_text\":", r->t30_status);
	append_json_string(out, r->t30_text);
	if (r->garbled != NULL)
		g_string_append_printf(out, ",\"garbled\":\"%s\"", r->garbled);
	g_string_append(out, "}\n");
	return g_string_free(out, FALSE);
}

void
sm_report_append(const char *path, const SmReport *report)
{
	g_autofree char *line = sm_report_json(report);
	int fd;

	g_printerr("hk-softmodem: call %d: %s", report->call, line);
	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		g_printerr("hk-softmodem: %s: %s\n", path, g_strerror(errno));
	if (fd >= 0)
		close(fd);
}
