/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A minimal test harness for the host unit tests: CHECK macros count
 * failures and go on; RUN prints one line per test; main returns nonzero
 * when anything failed.
 */
#ifndef MUSER_TEST_H
#define MUSER_TEST_H

#include <stdio.h>

extern int test_failures;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n",		\
			__FILE__, __LINE__, #cond);			\
		test_failures++;					\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	unsigned long long _a = (unsigned long long)(a);		\
	unsigned long long _b = (unsigned long long)(b);		\
	if (_a != _b) {							\
		fprintf(stderr, "%s:%d: %s == %#llx, expected %s == %#llx\n", \
			__FILE__, __LINE__, #a, _a, #b, _b);		\
		test_failures++;					\
	}								\
} while (0)

/* A call that must fail with -1 and errno @e. */
#define CHECK_ERR(call, e) do {						\
	errno = 0;							\
	long long _r = (call);						\
	if (_r != -1 || errno != (e)) {					\
		fprintf(stderr, "%s:%d: %s returned %lld errno %d, expected -1 errno %d\n", \
			__FILE__, __LINE__, #call, _r, errno, (e));	\
		test_failures++;					\
	}								\
} while (0)

/* A call that must fail with NULL and errno @e. */
#define CHECK_NULL_ERR(call, e) do {					\
	errno = 0;							\
	const void *_p = (call);					\
	if (_p || errno != (e)) {					\
		fprintf(stderr, "%s:%d: %s returned %p errno %d, expected NULL errno %d\n", \
			__FILE__, __LINE__, #call, _p, errno, (e));	\
		test_failures++;					\
	}								\
} while (0)

#define RUN(fn) do {							\
	int _before = test_failures;					\
	fn();								\
	printf("%s %s\n", test_failures == _before ? "ok  " : "FAIL", #fn); \
} while (0)

#define TEST_MAIN_END() return test_failures ? 1 : 0

#endif /* MUSER_TEST_H */
