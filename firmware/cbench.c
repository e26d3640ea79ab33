/* cbench: the C workload of scripts/bench-model.sh. Compiled at -O2 by Debian's
 * aarch64-linux-gnu-gcc like the other C firmware (firmware/build.sh), run with the MMU and
 * the caches on (common/mmu.S: RAM is Normal write-back memory). Three kernels of the kind
 * compiled code spends its time in, each checked against its known result:
 * - a sieve of Eratosthenes over the odd numbers below 2,000,000 (148,933 primes);
 * - a table-driven CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of 256 KiB of
 *   pseudo-random bytes, sixteen times over: the table is built first and checked by
 *   crc32("123456789") = 0xCBF43926, the standard check value;
 * - a 160 x 160 matrix multiply in 32-bit integers (wrapping), summed into a checksum.
 * The expected CRC and matrix checksums are what these same functions compute compiled for
 * any host (unsigned arithmetic only, so the result does not depend on the compiler).
 * About 52 million instructions in all, then "PASS cbench". */

extern void puts(const char *s);
extern void puthex(unsigned long v);
extern void mmu_enable(void);
extern void pass(void) __attribute__((noreturn));
extern void fail(const char *reason, unsigned long value) __attribute__((noreturn));

const char fw_name[] = "cbench";

#define SIEVE_N 2000000
/* Odd numbers only: odd_composite[k] is set when 2k + 1 is composite. */
static unsigned char odd_composite[SIEVE_N / 2];

static unsigned long __attribute__((noinline)) count_primes(void)
{
    unsigned long count = 1; /* 2 */
    for (unsigned long k = 1; 2 * k + 1 < SIEVE_N; k++) {
        if (odd_composite[k])
            continue;
        count++;
        unsigned long p = 2 * k + 1;
        for (unsigned long m = p * p; m < SIEVE_N; m += 2 * p)
            odd_composite[m / 2] = 1;
    }
    return count;
}

static unsigned int crc_table[256];

static void crc_init(void)
{
    for (unsigned int n = 0; n < 256; n++) {
        unsigned int c = n;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
        crc_table[n] = c;
    }
}

static unsigned int __attribute__((noinline)) crc32(const unsigned char *p, unsigned long n)
{
    unsigned int crc = 0xffffffffu;
    for (unsigned long i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#define CRC_BYTES (256 * 1024)
#define CRC_ROUNDS 16
static unsigned char buffer[CRC_BYTES];

static unsigned long crc_rounds(void)
{
    unsigned int x = 1;
    for (unsigned long i = 0; i < CRC_BYTES; i++) {
        x = x * 1103515245u + 12345u; /* a linear congruential generator */
        buffer[i] = x >> 16;
    }
    unsigned long acc = 0;
    for (int r = 0; r < CRC_ROUNDS; r++) {
        buffer[r] ^= 0x5a; /* each round a different message */
        acc = acc * 31 + crc32(buffer, CRC_BYTES);
    }
    return acc;
}

#define M 160

/* The expected results (see the top comment). */
#define CRC_EXPECTED 0x5e2e0dd9a5555d15ul
#define MATRIX_EXPECTED 0x8ba9e1c92f3aa000ul
static unsigned int ma[M][M], mb[M][M], mc[M][M];

static void __attribute__((noinline)) matmul(void)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            unsigned int s = 0;
            for (int k = 0; k < M; k++)
                s += ma[i][k] * mb[k][j];
            mc[i][j] = s;
        }
}

static unsigned long matrix_checksum(void)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            ma[i][j] = (unsigned int)(i * 7 + j * 3 + 1);
            mb[i][j] = (unsigned int)(i * 5 ^ j * 11) + 2u;
        }
    matmul();
    unsigned long sum = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++)
            sum = sum * 33 + mc[i][j];
    return sum;
}

int main(void)
{
    /* gcc vectorises at -O2 (its very-cheap cost model), and Advanced SIMD instructions trap
     * (EC 0x07) until CPACR_EL1.FPEN = 0b11 (bits 21:20, Arm ARM D19.2.30 "CPACR_EL1"). */
    __asm__ volatile("msr cpacr_el1, %0\n\tisb" : : "r"(3UL << 20));
    mmu_enable();
    crc_init();
    unsigned long check = crc32((const unsigned char *)"123456789", 9);
    if (check != 0xcbf43926u)
        fail("crc32-check", check);
    const struct {
        const char *name, *label;
        unsigned long value, expected;
    } results[] = {
        {"primes", "cbench: primes below 2000000: ", count_primes(), 148933},
        {"crc", "cbench: crc rounds: ", crc_rounds(), CRC_EXPECTED},
        {"matrix", "cbench: matrix checksum: ", matrix_checksum(), MATRIX_EXPECTED},
    };
    for (unsigned long r = 0; r < sizeof results / sizeof results[0]; r++) {
        puts(results[r].label);
        puthex(results[r].value);
        puts("\n");
    }
    for (unsigned long r = 0; r < sizeof results / sizeof results[0]; r++)
        if (results[r].value != results[r].expected)
            fail(results[r].name, results[r].value);
    pass();
}
