// SPDX-License-Identifier: BSD-3-Clause
/*
 * Migration through the migration region, driven as a v1 VMM (and
 * muser.ko for v2) drives it: a stream saved from one device and loaded
 * into another (config space, the state area, the device's own bytes), the
 * device's notices, and a hostile sweep: every byte of a stream flipped,
 * every truncation, a wrong version, a device refusing its bytes, states
 * and accesses out of place. Nothing may crash (the sanitizer build runs
 * this too), and a bad stream must never be applied.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define MIG		MUSER_NUM_REGIONS
#define F(f)		offsetof(struct vfio_device_migration_info, f)

struct devstate {
	uint32_t version;	/* what load accepts */
	uint8_t bytes[100];	/* the device's own */
	unsigned int loads;
	enum muser_mig_state told[8];
	unsigned int ntold;
};

static int on_state(struct muser_dev *dev, void *priv, enum muser_mig_state s)
{
	struct devstate *d = priv;

	(void)dev;
	if (d->ntold < 8)
		d->told[d->ntold++] = s;
	return 0;
}

static ssize_t on_save(struct muser_dev *dev, void *priv, void *buf,
		       size_t size)
{
	struct devstate *d = priv;

	(void)dev;
	if (buf)
		memcpy(buf, d->bytes, size);
	return sizeof(d->bytes);
}

static int on_load(struct muser_dev *dev, void *priv, const void *buf,
		   size_t len, uint32_t version)
{
	struct devstate *d = priv;

	(void)dev;
	if (version != d->version || len != sizeof(d->bytes)) {
		errno = EPROTO;
		return -1;
	}
	memcpy(d->bytes, buf, len);
	d->loads++;
	return 0;
}

static void dev_new(struct tctx *t, struct devstate *d, uint32_t version)
{
	const struct muser_migration_ops ops = {
		.version = version,
		.state = on_state,
		.save = on_save,
		.load = on_load,
	};

	memset(d, 0, sizeof(*d));
	d->version = version;
	tctx_init(t);
	CHECK_EQ(muser_setup_bar(t->dev, 2, 0x100, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_setup_migration(t->dev, &ops, d), 0);
	tctx_realize(t);
	CHECK_ERR(muser_setup_migration(t->dev, &ops, d), EBUSY);
}

static uint64_t rd64(struct tctx *t, uint64_t off)
{
	uint64_t v = 0;

	CHECK_EQ(treq(t, MIG, off, &v, 8, false), 0);
	return v;
}

static int set_state(struct tctx *t, uint32_t s)
{
	return treq(t, MIG, F(device_state), &s, 4, true);
}

/* Save the whole stream of @t, as QEMU 7.2 does after the VM stopped. */
static uint8_t *save(struct tctx *t, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0;

	CHECK_EQ(set_state(t, VFIO_DEVICE_STATE_V1_SAVING), 0);
	while (rd64(t, F(pending_bytes))) {
		uint64_t off = rd64(t, F(data_offset)), size = rd64(t, F(data_size));
		uint64_t i;

		CHECK(size > 0 && size <= 256 * 1024);
		buf = realloc(buf, n + size);
		for (i = 0; i < size; i += 4096) {
			uint32_t c = size - i < 4096 ? size - i : 4096;

			CHECK_EQ(treq(t, MIG, off + i, buf + n + i, c, false), 0);
		}
		n += size;
	}
	CHECK_EQ(set_state(t, VFIO_DEVICE_STATE_V1_STOP), 0);
	*len = n;
	return buf;
}

/* Load @len bytes in chunks of @chunk; the first error, or 0. */
static int load(struct tctx *t, const uint8_t *buf, size_t len, size_t chunk)
{
	size_t pos = 0;
	int err;

	err = set_state(t, VFIO_DEVICE_STATE_V1_RESUMING);
	if (err)
		return err;
	while (pos < len) {
		uint64_t off = rd64(t, F(data_offset)), n = len - pos, i;

		n = n < chunk ? n : chunk;
		for (i = 0; i < n; i += 4096) {
			uint32_t c = n - i < 4096 ? n - i : 4096;

			err = treq(t, MIG, off + i, (void *)(buf + pos + i), c, true);
			if (err)
				return err;
		}
		err = treq(t, MIG, F(data_size), &n, 8, true);
		if (err)
			return err;
		pos += n;
	}
	return set_state(t, VFIO_DEVICE_STATE_V1_RUNNING);
}

static void test_round_trip(void)
{
	struct devstate da, db;
	struct tctx a, b;
	uint8_t *stream;
	size_t len, size;
	uint8_t *st;

	dev_new(&a, &da, 3);
	memset(da.bytes, 0x5a, sizeof(da.bytes));
	cfg_wr(&a, PCI_BASE_ADDRESS_2, 4, 0xfe000000);
	cfg_wr(&a, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	st = muser_state(a.dev, &size);
	CHECK(st && size > 1000);
	memcpy(st + 100, "device state", 12);

	/* the region and its header */
	CHECK_EQ(a.fk->info.num_dev_regions, 1);
	CHECK_EQ(a.fk->info.dev_regions[0].type, VFIO_REGION_TYPE_MIGRATION_DEPRECATED);
	CHECK_EQ(a.fk->info.dev_regions[0].subtype, VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED);
	CHECK_EQ(trd(&a, MIG, F(device_state), 4), VFIO_DEVICE_STATE_V1_RUNNING);
	CHECK_EQ(rd64(&a, F(pending_bytes)), 0);
	CHECK(rd64(&a, MUSER_MIG_STOP_COPY_SIZE) > 200);

	/* pre-copy has nothing; stop-copy the rest */
	CHECK_EQ(set_state(&a, VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0);
	CHECK_EQ(rd64(&a, F(pending_bytes)), 0);
	stream = save(&a, &len);
	CHECK_EQ(len, rd64(&a, MUSER_MIG_STOP_COPY_SIZE));
	CHECK_EQ(da.ntold, 1);
	CHECK_EQ(da.told[0], MUSER_MIG_STOPPED);

	dev_new(&b, &db, 3);
	CHECK_EQ(load(&b, stream, len, 256 * 1024), 0);
	CHECK_EQ(db.loads, 1);
	CHECK_EQ(db.bytes[99], 0x5a);
	CHECK_EQ(cfg_rd(&b, PCI_BASE_ADDRESS_2, 4), 0xfe000000);
	CHECK_EQ(cfg_rd(&b, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
	CHECK(!memcmp((uint8_t *)muser_state(b.dev, NULL) + 100, "device state", 12));
	CHECK_EQ(db.ntold, 2);
	CHECK_EQ(db.told[0], MUSER_MIG_RESUMING);
	CHECK_EQ(db.told[1], MUSER_MIG_RUNNING);

	/* small chunks, as a v2 VMM's writes may come */
	tctx_fini(&b);
	dev_new(&b, &db, 3);
	CHECK_EQ(load(&b, stream, len, 7), 0);
	CHECK_EQ(db.loads, 1);

	/* the source carries on after a cancelled migration */
	CHECK_EQ(set_state(&a, VFIO_DEVICE_STATE_V1_RUNNING), 0);
	CHECK_EQ(da.told[da.ntold - 1], MUSER_MIG_RUNNING);
	free(stream);
	tctx_fini(&a);
	tctx_fini(&b);
}

/* A bad stream: refused before RUNNING, and never applied. */
static void expect_refused(const uint8_t *stream, size_t len, uint32_t version)
{
	struct devstate d;
	struct tctx t;

	dev_new(&t, &d, version);
	CHECK(load(&t, stream, len, 4096) != 0);
	CHECK_EQ(d.loads, 0);
	CHECK_EQ(cfg_rd(&t, PCI_BASE_ADDRESS_2, 4), 0);
	CHECK_EQ(set_state(&t, VFIO_DEVICE_STATE_V1_RUNNING), EINVAL);
	/* a reset ends the session, the device runs */
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(trd(&t, MIG, F(device_state), 4), VFIO_DEVICE_STATE_V1_RUNNING);
	tctx_fini(&t);
}

static void test_hostile_streams(void)
{
	struct devstate d;
	struct tctx t;
	uint8_t *stream, *bad;
	size_t len, i;

	dev_new(&t, &d, 3);
	cfg_wr(&t, PCI_BASE_ADDRESS_2, 4, 0xfe000000);
	stream = save(&t, &len);
	tctx_fini(&t);
	bad = malloc(len);

	/* every byte flipped: the header, the parts, the checksum */
	for (i = 0; i < len; i += i < 128 ? 1 : 397) {
		memcpy(bad, stream, len);
		bad[i] ^= 0x41;
		expect_refused(bad, len, 3);
	}
	/* every truncation of the header, then some */
	for (i = 0; i < len; i += i < 80 ? 1 : 1031)
		expect_refused(stream, i, 3);
	/* one byte too many */
	bad = realloc(bad, len + 1);
	memcpy(bad, stream, len);
	bad[len] = 0;
	expect_refused(bad, len + 1, 3);
	/* the device's bytes of another version */
	expect_refused(stream, len, 4);
	free(bad);
	free(stream);
}

static void test_out_of_place(void)
{
	struct devstate d;
	struct tctx t;
	uint64_t v = 8;
	uint8_t buf[8];
	uint32_t s;

	dev_new(&t, &d, 1);
	/* invalid states: RESUMING with another bit, bits past the mask */
	for (s = 5; s < 16; s++)
		CHECK_EQ(set_state(&t, s), EINVAL);
	CHECK_EQ(set_state(&t, 0xffffffff), EINVAL);
	/* data out of place */
	CHECK_EQ(treq(&t, MIG, F(data_size), &v, 8, true), EINVAL);
	CHECK_EQ(treq(&t, MIG, 4096, buf, 8, false), EINVAL);
	CHECK_EQ(treq(&t, MIG, 4096, buf, 8, true), EINVAL);
	/* header fields: read-only, wrong sizes, straddling */
	CHECK_EQ(treq(&t, MIG, F(pending_bytes), &v, 8, true), EINVAL);
	CHECK_EQ(treq(&t, MIG, F(device_state), buf, 2, true), EINVAL);
	CHECK_EQ(treq(&t, MIG, MUSER_MIG_HDR_SIZE - 4, buf, 8, false), EINVAL);
	CHECK_EQ(treq(&t, MIG, 64, buf, 8, true), EINVAL);
	CHECK_EQ(treq(&t, MIG, 64, buf, 8, false), 0);
	/* past the region, and a region that does not exist */
	CHECK_EQ(treq(&t, MIG, 4096 + 256 * 1024, buf, 8, false), EINVAL);
	CHECK_EQ(treq(&t, MIG + 1, 0, buf, 4, false), EINVAL);
	/* a data_size larger than the window while resuming */
	CHECK_EQ(set_state(&t, VFIO_DEVICE_STATE_V1_RESUMING), 0);
	v = 256 * 1024 + 1;
	CHECK_EQ(treq(&t, MIG, F(data_size), &v, 8, true), EINVAL);
	CHECK_EQ(set_state(&t, VFIO_DEVICE_STATE_V1_STOP), EINVAL);
	CHECK_EQ(treset(&t), 0);
	tctx_fini(&t);

	/* a device without migration has no such region */
	tctx_init(&t);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.num_dev_regions, 0);
	CHECK_EQ(treq(&t, MIG, 0, buf, 4, false), EINVAL);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_hostile_streams);
	RUN(test_out_of_place);
	return test_failures ? 1 : 0;
}
