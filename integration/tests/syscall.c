/* A static x86_64 program that makes the system call whose number is its
 * first argument (all arguments zero) and prints what the call returned as
 * an errno number, 0 for success: the seccomp scenarios use it to see what
 * a filter answers for calls a profile names and calls it does not. */
__asm__(".global _start\n_start:\n\tmov %rsp, %rdi\n\tcall start\n");

static long sys(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

void start(long *sp) {
    const char *arg = (const char *)sp[2];
    long nr = 0;
    while (arg && *arg >= '0' && *arg <= '9') nr = nr * 10 + (*arg++ - '0');
    long r = sys(nr, 0, 0, 0);
    unsigned long e = r < 0 && r > -4096 ? -r : 0;
    char buf[24];
    int i = sizeof buf;
    buf[--i] = '\n';
    do { buf[--i] = '0' + e % 10; e /= 10; } while (e);
    sys(1, 1, (long)(buf + i), sizeof buf - i);
    sys(60, 0, 0, 0);
    for (;;) {}
}
