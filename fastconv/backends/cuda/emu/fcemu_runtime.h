// fcemu_runtime.h: runs one kernel launch on the CPU (included by fcemu.h; one copy per compiled kernel file).
//
// Blocks run one at a time, in a seeded random order. The threads of a block are ucontext fibers with 64 KiB
// stacks: each runs until it waits at __syncthreads(), in a warp shuffle, or returns; between those points the
// scheduler runs the ready fibers in a seeded shuffled order, so a missing barrier reads unwritten shared memory.
// At each block start all shared memory (this library's thread-local block) is filled with 0xFF bytes (NaN).
// Argument buffers live in their own mappings between PROT_NONE guard pages, flush against the page after or the
// page before (seeded per buffer), and const ones are read-only: an out-of-bounds or read-only access faults, and
// the SIGSEGV handler turns the fault into an error naming argument, offset, block and thread, instead of a crash.
// Undefined behaviour that a GPU may hide is an error too: a barrier some threads skip or reach at different
// places, a shuffle whose mask names an exited or absent lane, an invalid launch configuration.
#pragma once

#include <dlfcn.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#ifndef FCEMU_DYNAMIC_SMEM_BYTES
#define FCEMU_DYNAMIC_SMEM_BYTES 49152  // the CUDA default limit without an opt-in, which we never ask for
#endif

extern "C" unsigned char* fcemu_dynamic_smem();  // defined after the kernel source (FCEMU_DYNAMIC_SMEM)

namespace fcemu {
enum State { READY, AT_BARRIER, AT_WARP, DONE };
enum Code { OK, BAD_LAUNCH, BUFFER_FAULT, OTHER_FAULT, BARRIER, WARP, SMEM_OVERFLOW };

struct AsyncCopy {  // one cp.async: `bytes` to shared dst, the first src_bytes from src, the rest zeros
    unsigned char* dst;
    const unsigned char* src;
    int bytes, src_bytes, group;
};

struct Thread {
    ucontext_t ctx;
    sigjmp_buf on_fault;
    uint3 idx;
    int lane, warp, state;
    const char* bar_file;
    int bar_line;
    unsigned long long value, result;  // warp collective: what this lane gives, what it gets
    int kind, arg, width;
    float* mma_d;  // mma.sync: this lane's fragments
    const unsigned *mma_a, *mma_b;
    std::vector<AsyncCopy> copies;  // cp.async issued and not yet waited for; group -1 until committed
    int groups = 0;                 // groups committed so far
};

struct Error {  // read by launcher.py
    int code, arg, write;
    long long offset;
    unsigned block[3], thread[3];
    char text[640];
};

struct Buffer {
    char* map;
    size_t map_len;
    char* base;
    size_t nbytes;
    int readonly;
};

const size_t STACK_BYTES = 64 * 1024;
Thread* current = nullptr;
uint3 block_idx;
dim3 block_dim, grid_dim;
Error error;
std::vector<Thread> threads;
std::vector<char*> stacks;  // each: a guard page, then STACK_BYTES
std::vector<int> warp_arrived;
std::vector<int> ready, released;
std::vector<Buffer> buffers;
ucontext_t scheduler;
void (*kernel)(void**);
void** kernel_args;
unsigned long long rng_state;
void* library;  // dlopen handle, for this library's thread-local (shared memory) block
size_t page = 4096;

inline const uint3& thread_idx() { return current->idx; }

inline unsigned long long next_random() {  // splitmix64
    unsigned long long z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

inline void shuffle_order(std::vector<int>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next_random() % i]);
}

template <typename... Args>
void set_error(int code, const char* fmt, Args... args) {
    error.code = code;
    std::snprintf(error.text, sizeof error.text, fmt, args...);
    const uint3 t = current ? current->idx : uint3{~0u, ~0u, ~0u};  // ~0: found by the scheduler, no one thread
    error.thread[0] = t.x, error.thread[1] = t.y, error.thread[2] = t.z;
    error.block[0] = block_idx.x, error.block[1] = block_idx.y, error.block[2] = block_idx.z;
}

template <typename... Args>
[[noreturn]] void fail(int code, const char* fmt, Args... args) {  // from inside a fiber: abort the launch
    set_error(code, fmt, args...);
    siglongjmp(current->on_fault, 1);
}

inline void yield() { swapcontext(&current->ctx, &scheduler); }

inline void syncthreads(const char* file, int line) {
    current->state = AT_BARRIER;
    current->bar_file = file;
    current->bar_line = line;
    yield();
}

// ---------------------------------------------------------------------------------------------- cp.async
// A copy is performed only when a cp.async.wait_group covering its group runs in the issuing thread, so shared
// memory read before the wait (or, by another thread, before the wait and a barrier) holds the block-start
// poison or older data: a missing wait gives wrong results, as it may on a GPU.
inline void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
    if (bytes != 4 && bytes != 8 && bytes != 16) fail(OTHER_FAULT, "cp.async of %d bytes (4, 8 or 16)", bytes);
    if (reinterpret_cast<unsigned long long>(dst) % bytes || (src_bytes && reinterpret_cast<unsigned long long>(src) % bytes))
        fail(OTHER_FAULT, "cp.async of %d bytes from or to an address not aligned to it", bytes);
    current->copies.push_back({static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), bytes,
                               src_bytes, -1});
}

inline void cp_async_commit() {
    for (AsyncCopy& c : current->copies)
        if (c.group < 0) c.group = current->groups;
    ++current->groups;
}

inline void cp_async_wait(int newest_pending) {  // every committed group but the newest `newest_pending` completes
    std::vector<AsyncCopy>& copies = current->copies;
    const int limit = current->groups - newest_pending;
    size_t kept = 0;
    for (const AsyncCopy& c : copies) {
        if (c.group < 0 || c.group >= limit) {
            copies[kept++] = c;
            continue;
        }
        std::memcpy(c.dst, c.src, size_t(c.src_bytes));
        std::memset(c.dst + c.src_bytes, 0, size_t(c.bytes - c.src_bytes));
    }
    copies.resize(kept);
}

// ---------------------------------------------------------------------------------------------- warp collectives
inline int source_lane(const Thread& t) {
    const int base = t.lane & ~(t.width - 1), end = base + t.width;
    int src = t.lane;
    if (t.kind == SHFL_IDX) src = base + (t.arg & (t.width - 1));
    if (t.kind == SHFL_UP) src = t.lane - t.arg >= base ? t.lane - t.arg : t.lane;
    if (t.kind == SHFL_DOWN) src = t.lane + t.arg < end ? t.lane + t.arg : t.lane;
    if (t.kind == SHFL_XOR) src = (t.lane ^ t.arg) < end ? (t.lane ^ t.arg) : t.lane;
    return src;
}

inline unsigned long long warp_exchange(unsigned mask, unsigned long long bits, ShuffleKind kind, int arg, int width) {
    Thread& t = *current;
    const int first = t.warp * 32, lanes = std::min<int>(32, int(threads.size()) - first);
    if (!((mask >> t.lane) & 1)) fail(WARP, "lane %d calls a shuffle with mask 0x%08x, which excludes it", t.lane, mask);
    if (lanes < 32 && (mask >> lanes)) fail(WARP, "shuffle mask 0x%08x names lanes beyond the %d of warp %d", mask, lanes, t.warp);
    if (width < 1 || width > 32 || (width & (width - 1))) fail(WARP, "shuffle width %d is not a power of 2 <= 32", width);
    t.value = bits, t.kind = kind, t.arg = arg, t.width = width;
    int& arrived = warp_arrived[t.warp];
    for (int l = 0; l < lanes; ++l) {  // lanes already waiting must be in the same collective
        const Thread& o = threads[first + l];
        if (o.state == AT_WARP && o.kind != kind) fail(WARP, "lanes of warp %d wait in different shuffles", t.warp);
    }
    if (++arrived < __builtin_popcount(mask)) {
        t.state = AT_WARP;
        yield();
        return t.result;
    }
    arrived = 0;
    for (int l = 0; l < lanes; ++l) {
        if (!((mask >> l) & 1)) continue;
        Thread& o = threads[first + l];
        const int src = source_lane(o);
        if (!((mask >> src) & 1)) fail(WARP, "lane %d reads lane %d, which is not in the mask 0x%08x", l, src, mask);
        o.result = threads[first + src].value;
        if (&o != &t) o.state = READY, released.push_back(first + l);
    }
    return t.result;
}

// ---------------------------------------------------------------------------------------------- mma.sync
inline unsigned round_tf32(float x) {  // to nearest, ties away from zero; NaN stays (a quiet) NaN
    unsigned u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return u | 0x00400000u;
    return (u + 0x1000u) & 0xffffe000u;
}

inline unsigned round_bf16(float x) {  // to nearest, ties to even; NaN stays (a quiet) NaN
    unsigned u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x0040u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

inline double bits_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// D = A . B + C of one warp from its 32 lanes' fragments (layouts in mma.cuh); the tensor core reads a tf32
// operand's top 19 bits, so the low 13 are dropped here too.
inline void mma_compute(MmaKind kind, int first) {
    const int K = kind == MMA_TF32_M16N8K8 ? 8 : 16;
    double A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
        const Thread& o = threads[first + l];
        const int g = l / 4, t = l % 4;
        for (int e = 0; e < 2; ++e) C[g][2 * t + e] = o.mma_d[e], C[g + 8][2 * t + e] = o.mma_d[2 + e];
        if (kind == MMA_TF32_M16N8K8) {
            auto tf = [](unsigned u) { return bits_float(u & 0xffffe000u); };
            A[g][t] = tf(o.mma_a[0]), A[g + 8][t] = tf(o.mma_a[1]), A[g][t + 4] = tf(o.mma_a[2]);
            A[g + 8][t + 4] = tf(o.mma_a[3]), B[t][g] = tf(o.mma_b[0]), B[t + 4][g] = tf(o.mma_b[1]);
        } else {
            auto bf = [](unsigned u, int e) { return bits_float(((u >> (16 * e)) & 0xffffu) << 16); };
            for (int e = 0; e < 2; ++e) {
                A[g][2 * t + e] = bf(o.mma_a[0], e), A[g + 8][2 * t + e] = bf(o.mma_a[1], e);
                A[g][2 * t + 8 + e] = bf(o.mma_a[2], e), A[g + 8][2 * t + 8 + e] = bf(o.mma_a[3], e);
                B[2 * t + e][g] = bf(o.mma_b[0], e), B[2 * t + 8 + e][g] = bf(o.mma_b[1], e);
            }
        }
    }
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        for (int half = 0; half < 2; ++half)
            for (int e = 0; e < 2; ++e) {
                const int m = g + 8 * half, n = 2 * t + e;
                double acc = C[m][n];
                for (int k = 0; k < K; ++k) acc += A[m][k] * B[k][n];
                threads[first + l].mma_d[2 * half + e] = float(acc);
            }
    }
}

inline void mma_sync(MmaKind kind, float* d, const unsigned* a, const unsigned* b) {
    Thread& t = *current;
    const int first = t.warp * 32;
    if (int(threads.size()) - first < 32) fail(WARP, "mma.sync in warp %d, which has fewer than 32 threads", t.warp);
    t.mma_d = d, t.mma_a = a, t.mma_b = b, t.kind = kind;
    for (int l = 0; l < 32; ++l) {
        const Thread& o = threads[first + l];
        if (o.state == AT_WARP && o.kind != kind) fail(WARP, "lanes of warp %d wait in different collectives", t.warp);
        if (o.state == DONE) fail(WARP, "mma.sync in warp %d after lane %d exited", t.warp, l);
    }
    if (++warp_arrived[t.warp] < 32) {
        t.state = AT_WARP;
        yield();
        return;
    }
    warp_arrived[t.warp] = 0;
    mma_compute(kind, first);
    for (int l = 0; l < 32; ++l)
        if (&threads[first + l] != &t) threads[first + l].state = READY, released.push_back(first + l);
}

// ---------------------------------------------------------------------------------------------- faults
inline void describe_fault(int sig, char* addr, int write) {
    for (size_t i = 0; i < buffers.size(); ++i) {
        const Buffer& b = buffers[i];
        if (addr < b.map || addr >= b.map + b.map_len) continue;
        error.arg = int(i), error.write = write, error.offset = addr - b.base;
        const bool inside = addr >= b.base && addr < b.base + b.nbytes;
        set_error(BUFFER_FAULT, "%s %s byte offset %lld of argument buffer %d (%zu bytes)",
                  inside ? "write to read-only (const)" : "out-of-bounds", write ? "write at" : "access at",
                  error.offset, int(i), b.nbytes);
        return;
    }
    for (char* s : stacks)
        if (addr >= s && addr < s + page) return set_error(OTHER_FAULT, "thread stack overflow (%zu KiB)", STACK_BYTES / 1024);
    set_error(OTHER_FAULT, "%s at address %p, outside every argument buffer",
              sig == SIGFPE ? "arithmetic exception (integer division by zero?)" : "invalid memory access", addr);
}

inline void on_signal(int sig, siginfo_t* info, void* uc) {
    if (!current) return (void)signal(sig, SIG_DFL);  // a fault of the runtime itself: let it crash loudly
    int write = -1;
#if defined(__x86_64__)
    write = (static_cast<ucontext_t*>(uc)->uc_mcontext.gregs[REG_ERR] & 2) ? 1 : 0;
#endif
    describe_fault(sig, static_cast<char*>(info->si_addr), write);
    siglongjmp(current->on_fault, 1);
}

struct SignalGuard {  // our handlers and an alternate stack for the duration of one launch
    static constexpr int SIGNALS[3] = {SIGSEGV, SIGBUS, SIGFPE};
    struct sigaction old[3];
    stack_t old_stack;
    std::vector<char> alt = std::vector<char>(256 * 1024);
    SignalGuard() {
        stack_t st{};
        st.ss_sp = alt.data(), st.ss_size = alt.size();
        sigaltstack(&st, &old_stack);
        struct sigaction sa{};
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        for (int i = 0; i < 3; ++i) sigaction(SIGNALS[i], &sa, &old[i]);
    }
    ~SignalGuard() {
        for (int i = 0; i < 3; ++i) sigaction(SIGNALS[i], &old[i], nullptr);
        sigaltstack(&old_stack, nullptr);
    }
};

// ---------------------------------------------------------------------------------------------- blocks
inline void fiber_main(int i) {
    Thread& t = threads[i];
    if (sigsetjmp(t.on_fault, 0) == 0) kernel(kernel_args);
    t.state = DONE;
    swapcontext(&t.ctx, &scheduler);
}

inline char* stack_for(size_t i) {
    while (stacks.size() <= i) {
        char* s = static_cast<char*>(mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        mprotect(s, page, PROT_NONE);
        stacks.push_back(s);
    }
    return stacks[i];
}

inline bool barrier_release() {  // every fiber is blocked: release a complete barrier, or report why it is stuck
    std::vector<int> done, waiting;
    for (size_t i = 0; i < threads.size(); ++i) {
        if (threads[i].state == AT_WARP)
            return set_error(WARP, "deadlock: warp %d waits in a shuffle for lanes that exited or wait at a barrier",
                             threads[i].warp), false;
        (threads[i].state == DONE ? done : waiting).push_back(int(i));
    }
    if (waiting.empty()) return false;
    const Thread& w = threads[waiting[0]];
    if (!done.empty())
        return set_error(BARRIER, "%zu threads exited while %zu wait at __syncthreads() (%s:%d)", done.size(),
                         waiting.size(), w.bar_file, w.bar_line), false;
    for (int i : waiting) {
        const Thread& o = threads[i];
        if (o.bar_line != w.bar_line || std::strcmp(o.bar_file, w.bar_file))
            return set_error(BARRIER, "threads wait at different __syncthreads() (%s:%d and %s:%d)", w.bar_file,
                             w.bar_line, o.bar_file, o.bar_line), false;
    }
    for (int i : waiting) threads[i].state = READY;
    ready = waiting;
    return true;
}

inline bool run_block() {  // false on error
    const int n = int(threads.size());
    for (int i = 0; i < n; ++i) {
        Thread& t = threads[i];
        t.idx = {unsigned(i % block_dim.x), unsigned(i / block_dim.x % block_dim.y), unsigned(i / (block_dim.x * block_dim.y))};
        t.lane = i % 32, t.warp = i / 32, t.state = READY;
        t.copies.clear(), t.groups = 0;  // copies a thread never waited for died with its block's shared memory
        getcontext(&t.ctx);
        t.ctx.uc_stack.ss_sp = stack_for(i) + page;
        t.ctx.uc_stack.ss_size = STACK_BYTES;
        t.ctx.uc_link = nullptr;
        makecontext(&t.ctx, reinterpret_cast<void (*)()>(fiber_main), 1, i);
    }
    std::fill(warp_arrived.begin(), warp_arrived.end(), 0);
    ready.resize(n);
    for (int i = 0; i < n; ++i) ready[i] = i;
    do {
        do {
            shuffle_order(ready);
            released.clear();
            for (int i : ready) {
                current = &threads[i];
                swapcontext(&scheduler, &current->ctx);
                current = nullptr;
                if (error.code) return false;
            }
            ready.swap(released);
        } while (!ready.empty());
    } while (barrier_release());
    return error.code == OK;
}
}  // namespace fcemu

#include "fcemu_launch.h"
