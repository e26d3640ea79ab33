/* csimd: C compiled at -O3 for armv8-a (the pragma below; build.sh passes -O2), so that
 * Debian's aarch64-linux-gnu-gcc vectorises the loops with Advanced SIMD (UADDL/UADDW/UADALP
 * for a byte sum, SMULL/SMLAL for a dot product, FMLA/FMUL for a float loop, ADDV/FMAXNMV
 * reductions) and uses scalar floating point (FSQRT, FDIV, FMADD, SCVTF, FCVTZS, FCMP). Each
 * result is checked against a value exact in any evaluation order (dot product: printed and
 * compared with QEMU only), then "PASS csimd". */

#pragma GCC optimize("O3")

extern void puts(const char *s);
extern void putdec(unsigned long v);
extern void pass(void) __attribute__((noreturn));
extern void fail(const char *reason, unsigned long value) __attribute__((noreturn));

const char fw_name[] = "csimd";

#define N 4096
static unsigned char bytes[N], bytes2[N];
static unsigned short sums16[N];
static short a16[N], b16[N];
static float fa[N], fb[N], fc[N];

/* The loop of issue 14: at -O3 gcc sums with uaddl/uaddw into 16- and 32-bit lanes. */
static unsigned int __attribute__((noinline)) byte_sum(const unsigned char *p, unsigned long n)
{
    unsigned int s = 0;
    for (unsigned long i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* Widening element-wise add: uaddl/uaddl2 (8-bit to 16-bit lanes). */
static void __attribute__((noinline)) add_pairs(unsigned short *r, const unsigned char *a,
                                                const unsigned char *b, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        r[i] = a[i] + b[i];
}

static long __attribute__((noinline)) dot16(const short *a, const short *b, unsigned long n)
{
    long s = 0;
    for (unsigned long i = 0; i < n; i++)
        s += (int)a[i] * b[i];
    return s;
}

static void __attribute__((noinline)) saxpy(float *c, const float *a, const float *b, float k)
{
    for (unsigned long i = 0; i < N; i++)
        c[i] = a[i] * k + b[i];
}

static float __attribute__((noinline)) max_of(const float *a)
{
    float m = a[0];
    for (unsigned long i = 1; i < N; i++)
        m = a[i] > m ? a[i] : m;
    return m;
}

/* FSQRT (no libm in firmware; __builtin_sqrt would call sqrt() for errno). */
static double fsqrt(double x)
{
    double r;
    __asm__("fsqrt %d0, %d1" : "=w"(r) : "w"(x));
    return r;
}

/* Sum of sqrt(i*i) / 1.0 over 0..999 in double precision: exact (499500). */
static double __attribute__((noinline)) sqrt_sum(void)
{
    double s = 0;
    for (int i = 0; i < 1000; i++) {
        double x = (double)i;
        s += fsqrt(x * x) / 1.0;
    }
    return s;
}

static void report(const char *what, unsigned long value)
{
    puts(what);
    putdec(value);
    puts("\n");
}

/* SIMD&FP instructions trap (EC 0x07) until CPACR_EL1.FPEN = 0b11 (bits 21:20, Arm ARM
 * D19.2.30); firmware/common/start.S leaves it at its reset value. */
static void enable_fp(void)
{
    __asm__ volatile("msr cpacr_el1, %0\n\tisb" : : "r"(3UL << 20));
}

static void __attribute__((noinline)) run(void)
{
    for (unsigned long i = 0; i < N; i++) {
        bytes[i] = (unsigned char)(i * 7 + 3);
        bytes2[i] = (unsigned char)(255 - i);
        a16[i] = (short)(i % 200) - 100;
        b16[i] = (short)(i % 50) - 25;
        fa[i] = (float)(i % 64);
        fb[i] = (float)(i % 16) * 0.5f;
    }
    unsigned int bsum = byte_sum(bytes, N);
    add_pairs(sums16, bytes, bytes2, N);
    unsigned long psum = 0;
    for (unsigned long i = 0; i < N; i++)
        psum += sums16[i];
    long dot = dot16(a16, b16, N);
    saxpy(fc, fa, fb, 2.0f);
    unsigned long fsum = 0;
    for (unsigned long i = 0; i < N; i++)
        fsum += (unsigned long)(fc[i] * 2.0f); /* exact: fc[i] is a multiple of 0.5 */
    unsigned long fmax = (unsigned long)max_of(fc);
    unsigned long roots = (unsigned long)sqrt_sum();
    report("csimd: byte sum: ", bsum);
    report("csimd: pairwise 16-bit sums: ", psum);
    report("csimd: dot product + 2^32: ", (unsigned long)(dot + (1L << 32)));
    report("csimd: 2 * sum of 2a + b: ", fsum);
    report("csimd: max: ", fmax);
    report("csimd: sum of sqrt(i*i): ", roots);
    if (bsum != 522240)
        fail("byte-sum", bsum);
    if (psum != 1044480)
        fail("pairs", psum);
    if (fsum != 546816)
        fail("saxpy", fsum);
    if (fmax != 133)
        fail("max", fmax);
    if (roots != 499500)
        fail("sqrt", roots);
    pass();
}

/* Only calls: nothing here may use a SIMD&FP register before enable_fp. */
int main(void)
{
    enable_fp();
    run();
}
