/* A static x86_64 program that makes one i386 system call (getpid, through
 * int 0x80), then writes "int80 ok" and exits 0: the seccomp scenarios use
 * it to prove that 32-bit calls meet the filter. */
void _start(void) {
    long r;
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    static const char msg[] = "int80 ok\n";
    __asm__ volatile ("syscall" :: "a"(1L), "D"(1L), "S"(msg), "d"(9L) : "rcx", "r11", "memory");
    __asm__ volatile ("syscall" :: "a"(60L), "D"(0L) : "rcx", "r11", "memory");
    for (;;) {}
}
