/* cbench: the C workload of scripts/bench-model.sh. Compiled at -O2 by Debian's
 * aarch64-linux-gnu-gcc like the other C firmware (firmware/build.sh), run with the MMU and
 * the caches on (common/mmu.S: RAM is Normal write-back memory). Three kernels of the kind
 * compiled code spends its time in, each checked against its known result:
 * - a sieve of Eratosthenes over 2,000,000 bytes (148,933 primes below 2,000,000);
 * - a table-driven CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of 256 KiB of
 *   pseudo-random bytes, sixteen times over: the table is built first and checked by
 *   crc32("123456789") = 0xCBF43926, the standard check value;
 * - a 160 x 160 matrix multiply in 32-bit integers (wrapping), summed into a checksum.
 * The expected CRC and matrix checksums are what these same functions compute compiled for
 * any host (unsigned arithmetic only, so the result does not depend on the compiler).
 * About 120 million instructions in all, then "PASS cbench". */

extern void puts(const char *s);
extern void putdec(unsigned long v);
extern void puthex(unsigned long v);
extern void mmu_enable(void);
extern void pass(void) __attribute__((noreturn));
extern void fail(const char *reason, unsigned long value) __attribute__((noreturn));

const char fw_name[] = "cbench";

#define SIEVE_N 2000000
static unsigned char composite[SIEVE_N];

static unsigned long __attribute__((noinline)) count_primes(void)
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

static void report(const char *what, unsigned long value)
{
    puts(what);
    puthex(value);
    puts("\n");
}

/* gcc vectorises at -O2 (its very-cheap cost model), and Advanced SIMD instructions trap
 * (EC 0x07) until CPACR_EL1.FPEN = 0b11 (bits 21:20, Arm ARM D19.2.30 "CPACR_EL1"). */
static void fp_enable(void)
{
    __asm__ volatile("msr cpacr_el1, %0\n\tisb" : : "r"(3UL << 20));
}

int main(void)
{
    fp_enable();
    mmu_enable();
    crc_init();
    unsigned long check = crc32((const unsigned char *)"123456789", 9);
    if (check != 0xcbf43926u)
        fail("crc32-check", check);
    unsigned long primes = count_primes();
    unsigned long crcs = crc_rounds();
    unsigned long matrix = matrix_checksum();
    report("cbench: primes below 2000000: ", primes);
    report("cbench: crc rounds: ", crcs);
    report("cbench: matrix checksum: ", matrix);
    if (primes != 148933)
        fail("primes", primes);
    if (crcs != CRC_EXPECTED)
        fail("crc", crcs);
    if (matrix != MATRIX_EXPECTED)
        fail("matrix", matrix);
    pass();
}
