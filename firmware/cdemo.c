/* cdemo: firmware written in C and compiled at -O2 by Debian's aarch64-linux-gnu-gcc (see
 * firmware/build.sh), so the model runs what a standard compiler emits, not only hand-written
 * assembly. Linked with firmware/common (start, UART, verdict). Computes a prime sieve, a
 * CRC-32, an insertion sort of pseudo-random keys and a recursive Fibonacci number, prints
 * them, checks them against known values, then "PASS cdemo". */

extern void puts(const char *s);
extern void putdec(unsigned long v);
extern void puthex(unsigned long v);
extern void pass(void) __attribute__((noreturn));
extern void fail(const char *reason, unsigned long value) __attribute__((noreturn));

const char fw_name[] = "cdemo";

#define SIEVE_N 10000
static unsigned char composite[SIEVE_N];

static unsigned long count_primes(void)
{
    unsigned long count = 0;
    for (unsigned long i = 2; i < SIEVE_N; i++) {
        if (composite[i])
            continue;
        count++;
        for (unsigned long j = i * i; j < SIEVE_N; j += i)
            composite[j] = 1;
    }
    return count;
}

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit. */
static unsigned int crc32(const char *p, unsigned long n)
{
    unsigned int crc = 0xffffffffu;
    for (unsigned long i = 0; i < n; i++) {
        crc ^= (unsigned char)p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

#define KEYS 64
static unsigned int keys[KEYS];

static unsigned long sort_checksum(void)
{
    unsigned int x = 12345;
    for (int i = 0; i < KEYS; i++) {
        x = x * 1103515245u + 12345u; /* a linear congruential generator */
        keys[i] = x >> 8;
    }
    for (int i = 1; i < KEYS; i++) {
        unsigned int k = keys[i];
        int j = i - 1;
        while (j >= 0 && keys[j] > k) {
            keys[j + 1] = keys[j];
            j--;
        }
        keys[j + 1] = k;
    }
    unsigned long sum = 0;
    for (int i = 0; i < KEYS; i++) {
        if (i > 0 && keys[i - 1] > keys[i])
            fail("not-sorted", i);
        sum = sum * 31 + keys[i];
    }
    return sum;
}

static unsigned long fib(unsigned long n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* Exactly 1000 iterations on one source line: `next` over it is what scripts/bench-gdb.sh
 * measures (one round trip with range stepping, thousands without). */
static volatile unsigned long loop_acc;

static void __attribute__((noinline)) loop_1000(void)
{
    for (unsigned long i = 0; i < 1000; i++) loop_acc += i;
}

static void report(const char *what, unsigned long value)
{
    puts(what);
    putdec(value);
    puts("\n");
}

int main(void)
{
    unsigned long primes = count_primes();
    unsigned long crc = crc32("123456789", 9);
    unsigned long sorted = sort_checksum();
    unsigned long f = fib(20);
    loop_1000();
    report("cdemo: primes below 10000: ", primes);
    report("cdemo: crc32(\"123456789\"): ", crc);
    report("cdemo: sort checksum: ", sorted);
    report("cdemo: fib(20): ", f);
    report("cdemo: sum of 0..999: ", loop_acc);
    if (primes != 1229)
        fail("primes", primes);
    if (crc != 0xcbf43926u)
        fail("crc32", crc);
    if (f != 6765)
        fail("fib", f);
    if (loop_acc != 499500)
        fail("loop", loop_acc);
    pass();
}
