/* Loaded into the test processes (LD_PRELOAD, bin/test): Python 3.11 keeps each thread's frames in 16 KiB
 * chunks, mapped with mmap when a call goes one frame deeper than the chunks hold and unmapped as soon as it
 * returns. Django's templates and middleware call deep enough to cross a chunk's end over and over: a page
 * cost tens of thousands of mmap/munmap pairs, each with its page faults (tests/test_dashboard.py: 90,000
 * pairs; the processes' system time was a fifth of their CPU). Here an unmapped chunk is kept (up to 64 per
 * process) and handed back, zeroed as new memory is, to the next such mmap.
 *
 * Only what this file mapped as a chunk (private, anonymous, read-write, 16 KiB, no address asked for) is
 * kept: a range another mmap, mprotect or mremap touches is forgotten, and a chunk unmapped twice is unmapped
 * the second time, so nothing else's memory, nor one chunk twice, is ever handed out. Processes other than
 * Python (chromium, Playwright's driver, gcc) pass straight through. 64-bit Linux only. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(void *) == 8 && sizeof(off_t) == 8, "64-bit Linux only (bin/test runs without it)");

#define CHUNK 16384
#define KEEP 64
#define TRACK 2048

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int enabled;
static void *kept[KEEP];
static int n_kept;
static uintptr_t ours[TRACK]; /* the chunks mapped here and handed out (a kept one is in kept[] alone) */
static int n_ours;

static void forget_range(uintptr_t start, size_t len) {
    for (int i = 0; i < n_ours;)
        if (ours[i] + CHUNK > start && ours[i] < start + len) ours[i] = ours[--n_ours];
        else i++;
    for (int i = 0; i < n_kept;)
        if ((uintptr_t)kept[i] + CHUNK > start && (uintptr_t)kept[i] < start + len) kept[i] = kept[--n_kept];
        else i++;
}

static void forget(void *addr, size_t len) {
    pthread_mutex_lock(&lock);
    if (n_ours || n_kept) forget_range((uintptr_t)addr, len);
    pthread_mutex_unlock(&lock);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!enabled) return (void *)syscall(SYS_mmap, addr, len, (long)prot, (long)flags, (long)fd, off);
    if (addr == NULL && len == CHUNK && prot == (PROT_READ | PROT_WRITE) &&
        flags == (MAP_PRIVATE | MAP_ANONYMOUS) && fd == -1 && off == 0) {
        pthread_mutex_lock(&lock);
        if (n_kept) {
            void *p = kept[--n_kept];
            if (n_ours < TRACK) ours[n_ours++] = (uintptr_t)p;
            pthread_mutex_unlock(&lock);
            memset(p, 0, CHUNK);
            return p;
        }
        void *p = (void *)syscall(SYS_mmap, addr, len, (long)prot, (long)flags, (long)fd, off);
        if (p != MAP_FAILED && n_ours < TRACK) ours[n_ours++] = (uintptr_t)p;
        pthread_mutex_unlock(&lock);
        return p;
    }
    void *p = (void *)syscall(SYS_mmap, addr, len, (long)prot, (long)flags, (long)fd, off);
    if (p != MAP_FAILED) forget(p, len);
    return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

int munmap(void *addr, size_t len) {
    if (!enabled) return (int)syscall(SYS_munmap, addr, len);
    pthread_mutex_lock(&lock);
    if (len == CHUNK && n_kept < KEEP) {
        for (int i = 0; i < n_ours; i++)
            if (ours[i] == (uintptr_t)addr) {
                /* Out of ours[]: unmapping it twice unmaps it (the second time, it is not ours). */
                ours[i] = ours[--n_ours];
                kept[n_kept++] = addr;
                pthread_mutex_unlock(&lock);
                return 0;
            }
    }
    if (n_ours || n_kept) forget_range((uintptr_t)addr, len);
    pthread_mutex_unlock(&lock);
    return (int)syscall(SYS_munmap, addr, len);
}

int mprotect(void *addr, size_t len, int prot) {
    if (enabled) forget(addr, len);
    return (int)syscall(SYS_mprotect, addr, len, (long)prot);
}

int pkey_mprotect(void *addr, size_t len, int prot, int pkey) {
    if (enabled) forget(addr, len);
    return (int)syscall(SYS_pkey_mprotect, addr, len, (long)prot, (long)pkey);
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    void *new_address = NULL;
    if (flags & MREMAP_FIXED) {
        va_list args;
        va_start(args, flags);
        new_address = va_arg(args, void *);
        va_end(args);
        if (enabled) forget(new_address, new_len);
    }
    if (enabled) forget(old, old_len);
    return (void *)syscall(SYS_mremap, old, old_len, new_len, (long)flags, new_address);
}

static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork(void) { pthread_mutex_unlock(&lock); }

__attribute__((constructor)) static void start(void) {
    pthread_atfork(before_fork, after_fork, after_fork);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    const char *name = strrchr(exe, '/');
    enabled = strncmp(name ? name + 1 : exe, "python", 6) == 0;
}
