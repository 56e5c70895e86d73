// SPDX-License-Identifier: BSD-3-Clause
/*
 * virtio-blk request handling of the sample on a temporary backing file:
 * reads and writes through split iovecs, flush, GET_ID, discard and write
 * zeroes, range checks, unsupported and malformed requests.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../lib/tests/test.h"
#include "blk.h"

int test_failures;

#define SECTORS 64

static struct blk b;
static char path[] = "/tmp/test_blk.XXXXXX";

static struct virtio_blk_outhdr hdr(uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = {
		.type = htole32(type), .sector = htole64(sector),
	};
	return h;
}

static void setup(void)
{
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, SECTORS * BLK_SECTOR + 100) == 0);	/* a partial sector */
	close(fd);
	CHECK(blk_open(&b, path) == 0);
	CHECK_EQ(b.sectors, SECTORS);
	CHECK(!b.ro);
	CHECK(strncmp(b.id, "test_blk.", 9) == 0);
}

static void test_write_read(void)
{
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_OUT, 3);
	uint8_t data[1024], back[1024], status = 0xff;
	struct iovec out[3] = {
		{ &h, sizeof(h) }, { data, 100 }, { data + 100, 924 },
	};
	struct iovec in[3];
	unsigned int i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = i * 7 + 1;
	in[0] = (struct iovec){ &status, 1 };
	CHECK_EQ(blk_request(&b, out, 3, in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	CHECK(pread(b.fd, back, sizeof(back), 3 * BLK_SECTOR) == sizeof(back));
	CHECK(memcmp(back, data, sizeof(data)) == 0);

	/* read it back into three buffers, the status byte in the last one */
	h = hdr(VIRTIO_BLK_T_IN, 3);
	memset(back, 0, sizeof(back));
	uint8_t tail[25];
	in[0] = (struct iovec){ back, 1000 };
	in[1] = (struct iovec){ back + 1000, 0 };
	in[2] = (struct iovec){ tail, sizeof(tail) };
	CHECK_EQ(blk_request(&b, out, 1, in, 3), 1025);
	CHECK(memcmp(back, data, 1000) == 0);
	CHECK(memcmp(tail, data + 1000, 24) == 0);
	CHECK_EQ(tail[24], VIRTIO_BLK_S_OK);
	CHECK_EQ(b.n_in, 1);
	CHECK_EQ(b.n_out, 1);
}

static void test_ranges(void)
{
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_IN, SECTORS - 1);
	uint8_t buf[1024], status;
	struct iovec out = { &h, sizeof(h) };
	struct iovec in[2] = { { buf, 512 }, { &status, 1 } };

	CHECK_EQ(blk_request(&b, &out, 1, in, 2), 513);	/* the last sector */
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	in[0].iov_len = 1024;
	CHECK_EQ(blk_request(&b, &out, 1, in, 2), 1);	/* beyond the end */
	CHECK_EQ(status, VIRTIO_BLK_S_IOERR);
	h = hdr(VIRTIO_BLK_T_IN, ~0ull);
	CHECK_EQ(blk_request(&b, &out, 1, in, 2), 1);	/* far beyond */
	CHECK_EQ(status, VIRTIO_BLK_S_IOERR);
	h = hdr(VIRTIO_BLK_T_IN, 0);
	in[0].iov_len = 100;				/* not whole sectors */
	CHECK_EQ(blk_request(&b, &out, 1, in, 2), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_IOERR);
}

static void test_misc(void)
{
	struct virtio_blk_outhdr h = hdr(VIRTIO_BLK_T_FLUSH, 0);
	struct iovec out = { &h, sizeof(h) };
	char id[VIRTIO_BLK_ID_BYTES + 1];
	uint8_t status;
	struct iovec in[2] = { { &status, 1 } };

	CHECK_EQ(blk_request(&b, &out, 1, in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	h = hdr(VIRTIO_BLK_T_GET_ID, 0);
	memset(id, 'x', sizeof(id));
	in[0] = (struct iovec){ id, VIRTIO_BLK_ID_BYTES };
	in[1] = (struct iovec){ &status, 1 };
	CHECK_EQ(blk_request(&b, &out, 1, in, 2), VIRTIO_BLK_ID_BYTES + 1);
	CHECK(strncmp(id, "test_blk.", 9) == 0);
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	h = hdr(VIRTIO_BLK_T_SCSI_CMD, 0);
	CHECK_EQ(blk_request(&b, &out, 1, in + 1, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_UNSUPP);
	h = hdr(12345, 0);
	CHECK_EQ(blk_request(&b, &out, 1, in + 1, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_UNSUPP);
	/* no status byte, a short header: nothing to report with */
	CHECK_ERR(blk_request(&b, &out, 1, NULL, 0), EINVAL);
	out.iov_len = 15;
	CHECK_ERR(blk_request(&b, &out, 1, in + 1, 1), EINVAL);
}

static void test_discard_zeroes(void)
{
	struct {
		struct virtio_blk_outhdr h;
		struct virtio_blk_discard_write_zeroes r[2];
	} __attribute__((packed)) req = { .h = hdr(VIRTIO_BLK_T_WRITE_ZEROES, 0) };
	uint8_t buf[4 * BLK_SECTOR], status, ones[sizeof(buf)];
	struct iovec out = { &req, sizeof(req) };
	struct iovec in = { &status, 1 };
	unsigned int i;

	memset(ones, 0xa5, sizeof(ones));
	CHECK(pwrite(b.fd, ones, sizeof(ones), 8 * BLK_SECTOR) == sizeof(ones));
	req.r[0] = (struct virtio_blk_discard_write_zeroes){
		.sector = htole64(8), .num_sectors = htole32(1) };
	req.r[1] = (struct virtio_blk_discard_write_zeroes){
		.sector = htole64(10), .num_sectors = htole32(2),
		.flags = htole32(VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) };
	CHECK_EQ(blk_request(&b, &out, 1, &in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	CHECK(pread(b.fd, buf, sizeof(buf), 8 * BLK_SECTOR) == sizeof(buf));
	for (i = 0; i < sizeof(buf); i++) {
		bool zero = i < BLK_SECTOR || i >= 2 * BLK_SECTOR;

		if (buf[i] != (zero ? 0 : 0xa5)) {
			CHECK(!"write zeroes zeroed the right sectors");
			break;
		}
	}
	/* discard: no flags allowed; ranges checked */
	req.h = hdr(VIRTIO_BLK_T_DISCARD, 0);
	CHECK_EQ(blk_request(&b, &out, 1, &in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_UNSUPP);
	req.r[1].flags = 0;
	CHECK_EQ(blk_request(&b, &out, 1, &in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_OK);
	req.r[1].sector = htole64(SECTORS - 1);
	CHECK_EQ(blk_request(&b, &out, 1, &in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_IOERR);
	/* a partial range descriptor */
	out.iov_len = sizeof(req) - 1;
	CHECK_EQ(blk_request(&b, &out, 1, &in, 1), 1);
	CHECK_EQ(status, VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(b.n_discard, 4);
	CHECK_EQ(b.n_zeroes, 1);
}

int main(void)
{
	setup();
	RUN(test_write_read);
	RUN(test_ranges);
	RUN(test_misc);
	RUN(test_discard_zeroes);
	close(b.fd);
	unlink(path);
	TEST_MAIN_END();
}
