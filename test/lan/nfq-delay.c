/*
 * nfq-delay: a constant delay (and random loss) in user space, for kernels without netem.
 *
 *   nfq-delay <queue-num> <delay-ms> <loss-fraction> <seed>
 *
 * Binds NFQUEUE <queue-num> in the current network namespace (run it with `ip netns exec`) and,
 * for every packet the kernel queues there (an `-j NFQUEUE` rule on the output hook), either
 * drops it with probability <loss-fraction> or holds it and accepts it <delay-ms> later. The delay
 * is the same for every packet, so the held packets are a FIFO and leave in the order they came
 * (verdicts are by packet id; the kernel does not require them in order). Only metadata is copied
 * to user space (NFQNL_COPY_META): the packet stays in the kernel. No fail-open: a full queue
 * drops, as a full netem queue would.
 *
 * Prints "ready queue=N" to stdout once bound, a stats line to stderr every second and at exit
 * ("nfq-delay queue=N delayed=D dropped=L enobufs=E held=H"). SIGTERM/SIGINT: accept what is
 * still held (it is due soon anyway), unbind, print the counts and exit 0.
 *
 * Build: gcc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue
 */
#include <arpa/inet.h> /* before the linux/ headers: they clash the other way round */
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct held {
	uint32_t id;
	int64_t due_ns;
};

static struct held *fifo;
static size_t cap, head, count; /* ring buffer */
static int64_t delay_ns;
static uint32_t loss_threshold; /* drop when rand32 < threshold */
static uint64_t rng;
static unsigned long long n_delayed, n_dropped, n_enobufs, n_verdict_err;
static volatile sig_atomic_t stop;
static unsigned queue_num;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* xorshift64*: reproducible per seed, good enough for a loss coin. */
static uint32_t rand32(void) {
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ULL) >> 32);
}

static int push(uint32_t id, int64_t due) {
	if (count == cap) {
		size_t ncap = cap ? cap * 2 : 4096;
		if (ncap > (1u << 22)) return -1; /* bounded: 4 M held packets */
		struct held *n = malloc(ncap * sizeof *n);
		if (!n) return -1;
		for (size_t i = 0; i < count; i++) n[i] = fifo[(head + i) % cap];
		free(fifo);
		fifo = n;
		cap = ncap;
		head = 0;
	}
	fifo[(head + count) % cap] = (struct held){ id, due };
	count++;
	return 0;
}

static void verdict(struct nfq_q_handle *qh, uint32_t id, uint32_t v) {
	if (nfq_set_verdict(qh, id, v, 0, NULL) < 0) n_verdict_err++;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
	(void)msg;
	(void)data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	if (!ph) return 0;
	uint32_t id = ntohl(ph->packet_id);
	if (loss_threshold && rand32() < loss_threshold) {
		n_dropped++;
		verdict(qh, id, NF_DROP);
		return 0;
	}
	if (delay_ns == 0 || push(id, now_ns() + delay_ns) < 0) {
		verdict(qh, id, NF_ACCEPT); /* no delay asked, or the bounded queue is full: pass it now */
		return 0;
	}
	n_delayed++;
	return 0;
}

/* Accept every held packet that is due (all of them when `all`). */
static void release(struct nfq_q_handle *qh, int all) {
	int64_t t = now_ns();
	while (count > 0 && (all || fifo[head].due_ns <= t)) {
		verdict(qh, fifo[head].id, NF_ACCEPT);
		head = (head + 1) % cap;
		count--;
	}
}

static void stats(void) {
	fprintf(stderr, "nfq-delay queue=%u delayed=%llu dropped=%llu enobufs=%llu held=%zu verdict_errors=%llu\n", queue_num,
		n_delayed, n_dropped, n_enobufs, count, n_verdict_err);
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: nfq-delay <queue-num> <delay-ms> <loss-fraction> <seed>\n");
		return 2;
	}
	queue_num = (unsigned)strtoul(argv[1], NULL, 10);
	double delay_ms = strtod(argv[2], NULL);
	double loss = strtod(argv[3], NULL);
	rng = strtoull(argv[4], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1; /* never 0 */
	if (delay_ms < 0 || delay_ms > 60000 || loss < 0 || loss > 1) {
		fprintf(stderr, "nfq-delay: delay must be 0..60000 ms, loss 0..1\n");
		return 2;
	}
	delay_ns = (int64_t)(delay_ms * 1e6);
	loss_threshold = loss >= 1 ? UINT32_MAX : (uint32_t)(loss * 4294967296.0);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct nfq_handle *h = nfq_open();
	if (!h) {
		perror("nfq-delay: nfq_open");
		return 1;
	}
	struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue_num, &on_packet, NULL);
	if (!qh) {
		perror("nfq-delay: nfq_create_queue (queue taken, or no CONFIG_NETFILTER_NETLINK_QUEUE?)");
		nfq_close(h);
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
		perror("nfq-delay: nfq_set_mode");
		return 1;
	}
	if (nfq_set_queue_maxlen(qh, 65536) < 0) perror("nfq-delay: nfq_set_queue_maxlen (kept the default)");
	int fd = nfq_fd(h);
	int rcvbuf = 8 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	/* A full socket buffer drops packets in the kernel (ENOBUFS on our next recv): counted, not fatal. */

	printf("ready queue=%u delay_ms=%g loss=%g\n", queue_num, delay_ms, loss);
	fflush(stdout);

	static char buf[65536] __attribute__((aligned));
	int64_t next_stats = now_ns() + 1000000000LL;
	while (!stop) {
		int64_t t = now_ns();
		int64_t until = next_stats;
		if (count > 0 && fifo[head].due_ns < until) until = fifo[head].due_ns;
		int timeout_ms = until <= t ? 0 : (int)((until - t + 999999) / 1000000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno != EINTR) {
			perror("nfq-delay: poll");
			break;
		}
		if (r > 0 && (pfd.revents & POLLIN)) {
			/* Bounded: at most 1024 messages per wake-up, then release what is due. */
			for (int i = 0; i < 1024; i++) {
				ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
				if (n < 0) {
					if (errno == ENOBUFS) {
						n_enobufs++;
						continue;
					}
					if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
					perror("nfq-delay: recv");
					stop = 1;
					break;
				}
				nfq_handle_packet(h, buf, (int)n);
			}
		}
		release(qh, 0);
		if (now_ns() >= next_stats) {
			stats();
			next_stats = now_ns() + 1000000000LL;
		}
	}
	release(qh, 1);
	stats();
	nfq_destroy_queue(qh);
	nfq_close(h);
	free(fifo);
	return 0;
}
