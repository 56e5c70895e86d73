// SPDX-License-Identifier: GPL-2.0
/*
 * blk-randread: 4 KiB random reads of a block device with O_DIRECT, QD
 * threads each with one read in flight (queue depth QD), for SECONDS; for
 * the nested-guest benchmark (vblk-bench.sh). Built static: it runs as part
 * of a busybox initramfs.
 *
 *   blk-randread DEV QD SECONDS
 *
 * Every read is at a random 4 KiB-aligned offset and must return 4096
 * bytes. When the device's blocks are stamped (the first 8 bytes of block N
 * hold N, little-endian, as vblk-bench.sh fills its backing file), each
 * read's stamp is checked too: a read of the wrong block counts as bad.
 * Output, one line:
 *
 *   reads 1234 short 0 errors 0 bad 0 usecs 3000123 iops 411.3
 *
 * Exit status 1 if any read failed, was short or bad, or none was made.
 */
#define _GNU_SOURCE	/* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#define BS 4096
#define MAX_QD 256

struct worker {
	pthread_t thread;
	unsigned int id;
	uint64_t reads, shorts, errors, bad;
	int first_errno;
};

static int fd;
static uint64_t nblocks;
static volatile int stop;
static pthread_barrier_t start;

/* xorshift64*: cheap, and each thread has its own sequence. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (w->id + 1), blk, stamp;
	void *buf;
	ssize_t n;

	if (posix_memalign(&buf, BS, BS)) {
		w->errors++;
		w->first_errno = ENOMEM;
		pthread_barrier_wait(&start);
		return NULL;
	}
	pthread_barrier_wait(&start);
	while (!stop) {
		blk = next_rand(&seed) % nblocks;
		n = pread(fd, buf, BS, blk * BS);
		if (n < 0) {
			if (!w->first_errno)
				w->first_errno = errno;
			w->errors++;
			continue;
		}
		if (n != BS) {
			w->shorts++;
			continue;
		}
		w->reads++;
		memcpy(&stamp, buf, sizeof(stamp));
		/* unstamped data (e.g. zeros) is not checked */
		if (stamp != blk && stamp < nblocks && stamp != 0)
			w->bad++;
	}
	free(buf);
	return NULL;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char *argv[])
{
	static struct worker w[MAX_QD];
	uint64_t reads = 0, shorts = 0, errors = 0, bad = 0, size;
	unsigned int qd, i;
	double secs, t0, t1;
	int first_errno = 0;
	struct stat st;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DEV QD SECONDS\n", argv[0]);
		return 2;
	}
	qd = strtoul(argv[2], NULL, 0);
	secs = strtod(argv[3], NULL);
	if (qd < 1 || qd > MAX_QD || secs <= 0) {
		fprintf(stderr, "QD must be 1..%d, SECONDS > 0\n", MAX_QD);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	/* a regular file works too (to try it out) */
	size = st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) {
		perror(argv[1]);
		return 1;
	}
	nblocks = size / BS;
	if (!nblocks) {
		fprintf(stderr, "%s: smaller than %d bytes\n", argv[1], BS);
		return 1;
	}
	pthread_barrier_init(&start, NULL, qd + 1);
	for (i = 0; i < qd; i++) {
		w[i].id = i;
		if (pthread_create(&w[i].thread, NULL, run, &w[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	pthread_barrier_wait(&start);
	t0 = now_us();
	usleep(secs * 1e6);
	stop = 1;
	for (i = 0; i < qd; i++) {
		pthread_join(w[i].thread, NULL);
		reads += w[i].reads;
		shorts += w[i].shorts;
		errors += w[i].errors;
		bad += w[i].bad;
		if (!first_errno)
			first_errno = w[i].first_errno;
	}
	t1 = now_us();
	printf("reads %llu short %llu errors %llu bad %llu usecs %.0f iops %.1f\n",
	       (unsigned long long)reads, (unsigned long long)shorts,
	       (unsigned long long)errors, (unsigned long long)bad, t1 - t0,
	       reads * 1e6 / (t1 - t0));
	if (first_errno)
		fprintf(stderr, "%s: first error: %s\n", argv[1], strerror(first_errno));
	return reads && !shorts && !errors && !bad ? 0 : 1;
}
