/* The floor under any sampler of the fast tier on this host: one wake-up per tick on an absolute deadline
 * and the kernel's reads of the same files, with no interpreter. bench_sampler.py's figures are read
 * against it (benchmarks/SAMPLER_RESULTS.md).
 *
 *   cc -O2 -o /tmp/sampler_floor benchmarks/sampler_floor.c
 *   /tmp/sampler_floor HZ SECONDS /proc/PID/status CGROUP/memory.usage_in_bytes CGROUP/memory.stat
 *   /tmp/sampler_floor HZ SECONDS            (wake-ups alone)
 *
 * Prints this process's CPU time (CLOCK_PROCESS_CPUTIME_ID) over the loop: % of one core, us per tick.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HZ SECONDS [FILE...]\n", argv[0]);
        return 2;
    }
    double hz = atof(argv[1]), seconds = atof(argv[2]);
    int nfiles = argc - 3, fds[16];
    if (hz <= 0 || seconds <= 0 || nfiles > 16) {
        fprintf(stderr, "HZ and SECONDS must be > 0, at most 16 files\n");
        return 2;
    }
    for (int i = 0; i < nfiles; i++) {
        if ((fds[i] = open(argv[3 + i], O_RDONLY | O_CLOEXEC)) < 0) {
            perror(argv[3 + i]);
            return 1;
        }
    }
    static char buf[16384];
    long long period = (long long)(1e9 / hz), ticks = (long long)(seconds * hz);
    struct timespec start, cpu0, cpu1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    long long t0 = start.tv_sec * 1000000000LL + start.tv_nsec;
    for (long long k = 1; k <= ticks; k++) {
        long long deadline = t0 + k * period;
        struct timespec d = {deadline / 1000000000LL, deadline % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL);
        for (int i = 0; i < nfiles; i++) {
            if (pread(fds[i], buf, sizeof buf, 0) < 0) {
                perror(argv[3 + i]);
                return 1;
            }
        }
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    double cpu = (cpu1.tv_sec - cpu0.tv_sec) + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
    printf("%g Hz, %d files: %.3f%% of one core, %.1f us per tick\n", hz, nfiles, 100 * cpu / seconds,
           1e6 * cpu / ticks);
    return 0;
}
