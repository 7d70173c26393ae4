/*
 * A sped-up wall clock for a test's redis-server, loaded with LD_PRELOAD. libfaketime cannot
 * serve here: Debian's redis-server is built with jemalloc, which calls clock_gettime() while
 * libfaketime initialises, and libfaketime then gives up ("unexpected recursive calls").
 * This shim needs no initialisation: it reads the real clock with a raw system call, so the
 * allocator is never involved.
 *
 * FAST_CLOCK_SPEED=N makes wall-clock time (gettimeofday, time, CLOCK_REALTIME) run N times
 * faster than real time from the moment the process starts. FAST_CLOCK_OFFSET_FILE names a file
 * whose first 8 bytes are a double: seconds added to the wall clock, read on every call through
 * a shared mapping, so a test can jump the clock forward (write the file) at any moment.
 * Monotonic clocks stay real, so Redis's event loop keeps its own pace while TIME, key expiry
 * and Lua's TIME move as the test says.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long double origin = -1;
static long double speed = 1;
static volatile double *offset = NULL;

static long double real_now(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  return (long double)ts.tv_sec + (long double)ts.tv_nsec / 1e9L;
}

static long double fake_now(void) {
  long double now = real_now();
  if (origin < 0) {
    const char *text = getenv("FAST_CLOCK_SPEED");
    speed = text ? strtold(text, NULL) : 1;
    const char *file = getenv("FAST_CLOCK_OFFSET_FILE");
    if (file) {
      int fd = open(file, O_RDONLY);
      if (fd >= 0) {
        void *map = mmap(NULL, sizeof(double), PROT_READ, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) offset = (volatile double *)map;
        close(fd);
      }
    }
    origin = now;
  }
  return origin + (now - origin) * speed + (offset ? (long double)*offset : 0);
}

static void fill(struct timespec *ts) {
  long double now = fake_now();
  ts->tv_sec = (time_t)now;
  ts->tv_nsec = (long)((now - (long double)ts->tv_sec) * 1e9L);
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
  if (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE) {
    fill(ts);
    return 0;
  }
  return (int)syscall(SYS_clock_gettime, clock, ts);
}

int gettimeofday(struct timeval *tv, void *tz) {
  (void)tz;
  if (tv) {
    struct timespec ts;
    fill(&ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return 0;
}

time_t time(time_t *out) {
  time_t now = (time_t)fake_now();
  if (out) *out = now;
  return now;
}
