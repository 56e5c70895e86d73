// SPDX-License-Identifier: BSD-3-Clause
/*
 * A program built against an installed libmuser (selftests/install/install.sh):
 * the headers are found (<muser.h> and, through it, <linux/muser.h>) and
 * the library links and loads. No kernel is needed: muser_dev_create()
 * must refuse a malformed UUID with EINVAL, and fail with ENOENT for a
 * device that does not exist.
 */
#include <errno.h>
#include <stdio.h>

#include <muser.h>

int main(void)
{
	struct muser_dev *dev;

	dev = muser_dev_create("not-a-uuid", 0);
	if (dev || errno != EINVAL) {
		fprintf(stderr, "muser_dev_create(bad uuid): expected EINVAL\n");
		return 1;
	}
	dev = muser_dev_create_path("/nonexistent/muser-consumer", 0);
	if (dev || errno != ENOENT) {
		fprintf(stderr, "muser_dev_create_path(missing): expected ENOENT\n");
		return 1;
	}
	printf("consumer ok: MUSER_READ_BUF_MIN=%u sizeof(struct muser_req)=%zu\n",
	       (unsigned int)MUSER_READ_BUF_MIN, sizeof(struct muser_req));
	return 0;
}
