/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness (extracted from linux-source-6.1 at build time) plus
 * what the muser selftests add to it.
 */
#ifndef MUSER_SELFTEST_HARNESS_H
#define MUSER_SELFTEST_HARNESS_H

#include "kselftest_harness.h"

/*
 * In the 6.1 harness a SKIP() in FIXTURE_SETUP still runs the test body:
 * start every TEST_F with this.
 */
#define SKIP_IF_SETUP_SKIPPED() do {		\
	if (_metadata->skip)			\
		return;				\
} while (0)

/* Skip unless muser.ko is loaded; usable in FIXTURE_SETUP and TEST(). */
#define REQUIRE_MUSER() do {					\
	if (!muser_loaded())					\
		SKIP(return, "muser.ko is not loaded");		\
	if (access("/dev/vfio/vfio", R_OK | W_OK))		\
		SKIP(return, "no /dev/vfio/vfio (vfio not loaded?)"); \
} while (0)

/*
 * Choosing tests, which the 6.1 harness cannot: -r FIXTURE.TEST or
 * -r FIXTURE.VARIANT.TEST (repeatable) runs only those, -f FIXTURE only
 * that fixture's, -t TEST only tests of that name, -l lists them all.
 * Unknown options are an error.
 */
static inline bool __muser_selected(struct __fixture_metadata *f,
				    struct __test_metadata *t,
				    struct __fixture_variant_metadata *v,
				    int argc, char **argv)
{
	char name[512];
	bool any = false;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *arg = argv[i + 1];

		any = true;
		if (!strcmp(argv[i], "-f") && !strcmp(arg, f->name))
			return true;
		if (!strcmp(argv[i], "-t") && !strcmp(arg, t->name))
			return true;
		if (strcmp(argv[i], "-r"))
			continue;
		snprintf(name, sizeof(name), "%s.%s", f->name, t->name);
		if (!strcmp(arg, name))
			return true;
		snprintf(name, sizeof(name), "%s.%s.%s", f->name, v ? v->name : "",
			 t->name);
		if (v && !strcmp(arg, name))
			return true;
	}
	return !any;
}

/*
 * Drop the fixtures, variants and tests not chosen; -1 on a bad command
 * line, 1 if it only listed, else 0.
 */
static inline int muser_harness_select(int argc, char **argv)
{
	struct __fixture_metadata *f;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-l")) {
			for (f = __fixture_list; f; f = f->next) {
				struct __test_metadata *t;

				for (t = f->tests; t; t = t->next)
					printf("%s.%s\n", f->name, t->name);
			}
			return 1;
		}
		if ((strcmp(argv[i], "-r") && strcmp(argv[i], "-f") &&
		     strcmp(argv[i], "-t")) || i + 1 == argc) {
			fprintf(stderr, "usage: %s [-l] [-r FIXTURE[.VARIANT].TEST] [-f FIXTURE] [-t TEST]...\n",
				argv[0]);
			return -1;
		}
		i++;
	}
	for (f = __fixture_list; f; f = f->next) {
		struct __fixture_variant_metadata *v, *keep = NULL, *last = NULL;
		struct __test_metadata *t, *head = NULL, *tail = NULL;

		for (t = f->tests; t; t = t->next) {
			bool in = !f->variant && __muser_selected(f, t, NULL, argc, argv);

			for (v = f->variant; v && !in; v = v->next)
				in = __muser_selected(f, t, v, argc, argv);
			if (!in)
				continue;
			if (tail)
				tail->next = t;
			else
				head = t;
			t->prev = tail ? tail : t;
			tail = t;
		}
		if (tail)
			tail->next = NULL;
		if (head)
			head->prev = tail;
		f->tests = head;
		/* Variants none of whose tests is chosen go too. */
		for (v = f->variant; v; v = v->next) {
			bool in = false;

			for (t = head; t && !in; t = t->next)
				in = __muser_selected(f, t, v, argc, argv);
			if (!in)
				continue;
			if (last)
				last->next = v;
			else
				keep = v;
			v->prev = last ? last : v;
			last = v;
		}
		if (f->variant) {
			if (last)
				last->next = NULL;
			if (keep)
				keep->prev = last;
			f->variant = keep;
		}
	}
	return 0;
}

#undef TEST_HARNESS_MAIN
#define TEST_HARNESS_MAIN \
	static void __attribute__((constructor)) \
	__constructor_order_last(void) \
	{ \
		if (!__constructor_order) \
			__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD; \
	} \
	int main(int argc, char **argv) { \
		int sel = muser_harness_select(argc, argv); \
		if (sel) \
			return sel < 0 ? KSFT_FAIL : KSFT_PASS; \
		return test_harness_run(argc, argv); \
	}

#endif
