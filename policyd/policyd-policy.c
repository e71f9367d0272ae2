/*
 * policyd-policy: the Postfix policy delegation listener (check_policy_service).
 *
 * Many connections in one epoll set (hk-poller), each with its own decoder and output
 * buffer. Postfix reuses a connection for request after request; a request whose answer
 * needs certd waits for it while the next ones are read, and replies leave in request
 * order.
 * A malformed request is logged and its connection closed, as Postfix's own policy
 * servers do; Postfix then tempfails that transaction and opens a new connection.
 *
 * Talks to: Postfix smtpd (policy requests), policyd_check() for the decisions.
 * Must never: block the main loop, answer out of order, read without bound while replies
 * wait to be sent, or let one connection's garbage affect another.
 */
#include "policyd-server.h"
#include "policyd-listen.h"
#include "hk-poller.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK        16384
#define MAX_IN_FLIGHT     16          /* requests read ahead on one connection */
#define OUT_HIGH_WATER    (64 * 1024) /* stop reading while this much waits to be sent */
#define ACCEPTS_PER_WAKE  16
#define REFUSAL_LOG_EVERY (10 * G_USEC_PER_SEC)

struct _PolicydPolicy {
	PolicydState *state;
	PolicydListeners listeners;
	HkPoller *poller;
	GHashTable *conns; /* Conn* set */
	guint max_connections;
	gint64 last_refusal_log;
	guint refused;
};

typedef struct {
	gint refs;
	PolicydPolicy *policy; /* NULL once closed */
	int fd;
	PolicydDecoder decoder;
	GByteArray *in; /* read, not yet decoded */
	gsize in_pos;
	GString *out;
	gsize out_sent;
	GQueue jobs; /* Job*, in arrival order */
	HkPollWatch *watch;
	gboolean eof;
	gboolean processing; /* inside conn_process(): replies decided now must not re-enter */
} Conn;

typedef struct {
	Conn *conn; /* a reference */
	PolicydRequest request;
	char *reply;     /* NULL until decided */
	gboolean orphan; /* the connection closed while it was being decided */
} Job;

static void conn_close(Conn *conn);
static void conn_process(Conn *conn);
static void conn_update_watches(Conn *conn);

static Conn *
conn_ref(Conn *conn)
{
	conn->refs++;
	return conn;
}

static void
conn_unref(Conn *conn)
{
	if (--conn->refs > 0)
		return;
	policyd_decoder_clear(&conn->decoder);
	g_byte_array_unref(conn->in);
	g_string_free(conn->out, TRUE);
	g_free(conn);
}

static void
job_free(Job *job)
{
	policyd_request_clear(&job->request);
	g_free(job->reply);
	conn_unref(job->conn);
	g_free(job);
}

/* ----- output ----- */

/* Closes a connection whose client is done and whose replies have all left; watches the
 * others for what they wait for. */
static void
conn_settle(Conn *conn)
{
	/* conn_process() settles it when done: no toggling of watches per request */
	if (conn->processing)
		return;
	if (conn->eof && g_queue_is_empty(&conn->jobs) && conn->out->len == 0)
		conn_close(conn);
	else
		conn_update_watches(conn);
}

/* Moves decided replies from the head of the queue to the output, in order, and sends. */
static void
conn_flush(Conn *conn)
{
	Job *job;

	while ((job = g_queue_peek_head(&conn->jobs)) != NULL && job->reply != NULL) {
		g_queue_pop_head(&conn->jobs);
		g_string_append(conn->out, job->reply);
		job_free(job);
	}
	if (!hk_send_pending(conn->fd, conn->out, &conn->out_sent)) {
		g_debug("policy connection: send: %s", g_strerror(errno));
		conn_close(conn);
		return;
	}
	conn_settle(conn);
}

/* ----- requests ----- */

static void
on_decided(const PolicydDecision *decision, gpointer data)
{
	Job *job = data;
	Conn *conn = job->conn;

	if (job->orphan) {
		job_free(job);
		return;
	}
	if (conn->policy == NULL || g_queue_peek_head(&conn->jobs) != job) {
		/* an earlier request still waits; it flushes this one too */
		job->reply = policyd_reply_format(decision->action);
		return;
	}
	conn_ref(conn);
	/* the oldest request: its reply goes straight to the output, without a copy */
	g_queue_pop_head(&conn->jobs);
	policyd_reply_append(conn->out, decision->action);
	job_free(job);
	conn_flush(conn);
	if (conn->policy != NULL && !conn->processing)
		conn_process(conn); /* input held back while the queue was full */
	conn_unref(conn);
}

/* The answer of a request decided as it was read, with no earlier one waiting. */
static void
on_decided_now(const PolicydDecision *decision, gpointer data)
{
	Conn *conn = data;

	policyd_reply_append(conn->out, decision->action);
	conn_flush(conn);
}

static void
job_start(Conn *conn, PolicydRequest *request)
{
	Job *job;

	/* most answers come from the cache: no job to queue, the reply leaves at once */
	if (g_queue_is_empty(&conn->jobs) &&
	    policyd_check_now(conn->policy->state, request, "policy", on_decided_now, conn)) {
		policyd_request_clear(request);
		return;
	}
	job = g_new0(Job, 1);
	job->conn = conn_ref(conn);
	job->request = *request;
	g_queue_push_tail(&conn->jobs, job);
	policyd_check(conn->policy->state, &job->request, "policy", on_decided, job);
}

static gboolean
conn_wants_input(Conn *conn)
{
	return !conn->eof && conn->in_pos >= conn->in->len &&
	       g_queue_get_length(&conn->jobs) < MAX_IN_FLIGHT && conn->out->len < OUT_HIGH_WATER;
}

static void
conn_decode(Conn *conn)
{
	g_autoptr(GError) error = NULL;
	PolicydRequest request = {0};
	gsize consumed = 0;
	PolicydDecodeStatus status;

	status = policyd_decoder_feed(&conn->decoder, (const char *)conn->in->data + conn->in_pos,
	                              conn->in->len - conn->in_pos, &consumed, &request, &error);
	conn->in_pos += consumed;
	if (status == POLICYD_DECODE_ERROR) {
		g_warning("policy client on fd %d: malformed request (%s); closing the connection",
		          conn->fd, error->message);
		conn_close(conn);
	} else if (status == POLICYD_DECODE_READY) {
		job_start(conn, &request);
	}
}

/* Decodes what was read while there is room for more requests and replies. */
static void
conn_process(Conn *conn)
{
	conn->processing = TRUE;
	while (conn->policy != NULL && conn->in_pos < conn->in->len &&
	       g_queue_get_length(&conn->jobs) < MAX_IN_FLIGHT && conn->out->len < OUT_HIGH_WATER)
		conn_decode(conn);
	conn->processing = FALSE;
	if (conn->policy == NULL)
		return;
	if (conn->in_pos >= conn->in->len) {
		g_byte_array_set_size(conn->in, 0);
		conn->in_pos = 0;
	}
	conn_settle(conn);
}

static void
conn_read(Conn *conn)
{
	guint8 buf[READ_CHUNK];
	ssize_t n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn->eof = TRUE;
		if (n < 0)
			g_debug("policy connection: recv: %s", g_strerror(errno));
	} else {
		g_byte_array_append(conn->in, buf, (guint)n);
	}
	conn_process(conn);
}

static void
on_conn_event(int fd, HkPollEvents events, gpointer data)
{
	Conn *conn = conn_ref(data);

	if (events & HK_POLL_OUT)
		conn_flush(conn);
	/* an error or hang-up shows itself to recv() */
	if (conn->policy != NULL && (events & (HK_POLL_IN | HK_POLL_ERR)) && conn_wants_input(conn))
		conn_read(conn);
	conn_unref(conn);
}

/* Waits for input while there is room for it, and for room to send while replies wait. */
static void
conn_update_watches(Conn *conn)
{
	HkPollEvents events =
	        (conn_wants_input(conn) ? HK_POLL_IN : 0) | (conn->out->len > 0 ? HK_POLL_OUT : 0);

	if (!hk_poll_watch_set(conn->watch, events)) {
		g_warning("policy client on fd %d: cannot watch the connection: %s; closing it",
		          conn->fd, g_strerror(errno));
		conn_close(conn);
	}
}

static void
conn_close(Conn *conn)
{
	Job *job;

	if (conn->policy == NULL)
		return;
	g_clear_pointer(&conn->watch, hk_poll_watch_remove);
	close(conn->fd);
	conn->fd = -1;
	/* the checks in flight hold their jobs: they end them when they are answered */
	while ((job = g_queue_pop_head(&conn->jobs)) != NULL) {
		if (job->reply != NULL)
			job_free(job);
		else
			job->orphan = TRUE;
	}
	g_hash_table_remove(conn->policy->conns, conn);
	conn->policy = NULL;
	conn_unref(conn);
}

/* ----- listeners ----- */

static void
refuse(PolicydPolicy *policy, int fd)
{
	gint64 now = g_get_monotonic_time();

	close(fd);
	policy->refused++;
	if (now - policy->last_refusal_log < REFUSAL_LOG_EVERY)
		return;
	g_warning("policy: %u connection(s) refused: max_connections (%u) reached", policy->refused,
	          policy->max_connections);
	policy->refused = 0;
	policy->last_refusal_log = now;
}

static void
accept_one(int fd, gpointer data)
{
	PolicydPolicy *policy = data;
	Conn *conn;

	if (g_hash_table_size(policy->conns) >= policy->max_connections) {
		refuse(policy, fd);
		return;
	}
	conn = g_new0(Conn, 1);
	conn->refs = 1; /* owned by policy->conns until closed */
	conn->policy = policy;
	conn->fd = fd;
	policyd_decoder_init(&conn->decoder);
	conn->in = g_byte_array_new();
	conn->out = g_string_sized_new(256);
	g_queue_init(&conn->jobs);
	g_hash_table_add(policy->conns, conn);
	conn->watch = hk_poller_add(policy->poller, fd, HK_POLL_IN, on_conn_event, conn);
	if (conn->watch == NULL) {
		g_warning("policy: cannot watch a new connection: %s; closing it",
		          g_strerror(errno));
		conn_close(conn);
	}
}

gboolean
policyd_policy_listen(PolicydPolicy *policy, const char *spec, guint mode, gid_t group,
                      GError **error)
{
	return policyd_listeners_add(&policy->listeners, spec, mode, group, error);
}

gboolean
policyd_policy_listen_fd(PolicydPolicy *policy, int fd, GError **error)
{
	if (policyd_listeners_add_fd(&policy->listeners, fd, error))
		return TRUE;
	close(fd);
	return FALSE;
}

PolicydPolicy *
policyd_policy_new(PolicydState *state, GError **error)
{
	HkPoller *poller = hk_poller_new(error);
	PolicydPolicy *policy;

	if (poller == NULL)
		return NULL;
	policy = g_new0(PolicydPolicy, 1);
	policy->state = state;
	policy->poller = poller;
	policyd_listeners_init(&policy->listeners, "policy", ACCEPTS_PER_WAKE, accept_one, policy);
	policy->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
	policy->max_connections = 1000;
	return policy;
}

void
policyd_policy_set_max_connections(PolicydPolicy *policy, guint max)
{
	policy->max_connections = max;
}

guint
policyd_policy_get_n_connections(PolicydPolicy *policy)
{
	return g_hash_table_size(policy->conns);
}

void
policyd_policy_free(PolicydPolicy *policy)
{
	GList *conns;

	if (policy == NULL)
		return;
	policyd_listeners_clear(&policy->listeners);
	conns = g_hash_table_get_keys(policy->conns);
	for (GList *l = conns; l != NULL; l = l->next)
		conn_close(l->data);
	g_list_free(conns);
	g_hash_table_destroy(policy->conns);
	hk_poller_free(policy->poller);
	g_free(policy);
}
