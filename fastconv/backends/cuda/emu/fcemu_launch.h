// fcemu_launch.h: one launch of a kernel (grid loop, checks) and what build.py exports per entry point; included at
// the end of fcemu_runtime.h.
#pragma once

namespace fcemu {
// ---------------------------------------------------------------------------------------------- launches
struct LaunchConfig {  // written by launcher.py
    unsigned grid[3], block[3];
    unsigned long long shared_bytes, seed, flush_denormals;
};

// CuPy compiles every kernel with -ftz=true: float arithmetic and comparisons on the GPU read and write fp32
// denormals as zero. A float32 entry point runs here with the CPU's flush-to-zero and denormals-are-zero modes
// on (the fibers' contexts, made after this is set, carry it), so the emulator computes what the GPU does; the
// modes also cover double arithmetic, which the GPU does not flush (float64 entry points run without them).
struct FlushDenormals {
    explicit FlushDenormals(bool on) : on(on) {
        if (on) saved = get(), set(saved | bits);
    }
    ~FlushDenormals() {
        if (on) set(saved);
    }
#if defined(__x86_64__) || defined(__i386__)
    static constexpr unsigned long bits = 0x8040;  // MXCSR FTZ | DAZ
    static unsigned long get() { return _mm_getcsr(); }
    static void set(unsigned long v) { _mm_setcsr(unsigned(v)); }
#elif defined(__aarch64__)
    static constexpr unsigned long bits = 1UL << 24;  // FPCR.FZ
    static unsigned long get() { unsigned long v; asm volatile("mrs %0, fpcr" : "=r"(v)); return v; }
    static void set(unsigned long v) { asm volatile("msr fpcr, %0" : : "r"(v)); }
#else
#error "fcemu: no flush-to-zero control for this CPU"
#endif
    bool on;
    unsigned long saved = 0;
};

inline bool check_config(const LaunchConfig& c) {
    const unsigned long long threads_per_block = 1ULL * c.block[0] * c.block[1] * c.block[2];
    const char* why = nullptr;
    if (!c.grid[0] || !c.grid[1] || !c.grid[2] || !threads_per_block) why = "a grid or block dimension is 0";
    else if (threads_per_block > 1024 || c.block[2] > 64) why = "more than 1024 threads per block or blockDim.z > 64";
    else if (c.grid[0] > 0x7fffffffU || c.grid[1] > 65535 || c.grid[2] > 65535) why = "a grid dimension is too large";
    else if (c.shared_bytes > FCEMU_DYNAMIC_SMEM_BYTES) why = "more dynamic shared memory than the 48 KiB default";
    if (why)
        set_error(BAD_LAUNCH, "invalid launch configuration grid (%u, %u, %u) block (%u, %u, %u) shared %llu: %s",
                  c.grid[0], c.grid[1], c.grid[2], c.block[0], c.block[1], c.block[2], c.shared_bytes, why);
    return !why;
}

inline std::pair<unsigned char*, size_t> shared_memory() {  // this library's thread-local block, for this thread
    fcemu_dynamic_smem()[0] = 0;  // makes sure the block is allocated
    void* data = nullptr;
    static size_t modid, size;
    dlinfo(library, RTLD_DI_TLS_MODID, &modid);
    dlinfo(library, RTLD_DI_TLS_DATA, &data);
    dl_iterate_phdr([](dl_phdr_info* info, size_t, void*) {
        for (int i = 0; info->dlpi_tls_modid == modid && i < info->dlpi_phnum; ++i)
            if (info->dlpi_phdr[i].p_type == PT_TLS) size = info->dlpi_phdr[i].p_memsz;
        return 0;
    }, nullptr);
    return {static_cast<unsigned char*>(data), size};
}

inline bool dynamic_smem_intact(size_t used) {
    const unsigned char* d = fcemu_dynamic_smem();
    for (size_t i = used; i < FCEMU_DYNAMIC_SMEM_BYTES; ++i)
        if (d[i] != 0xFF)
            return set_error(SMEM_OVERFLOW, "the block wrote dynamic shared memory at byte %zu, beyond the %zu bytes "
                             "of the launch", i, used), false;
    return true;
}

inline unsigned long long gcd(unsigned long long a, unsigned long long b) { return b ? gcd(b, a % b) : a; }

inline int launch(void (*k)(void**), const LaunchConfig* c, void** args) {
    static std::mutex one_at_a_time;
    std::lock_guard<std::mutex> lock(one_at_a_time);
    error = Error{};
    if (!check_config(*c)) return error.code;
    const FlushDenormals flush(c->flush_denormals != 0);
    kernel = k, kernel_args = args, rng_state = c->seed;
    grid_dim = dim3(c->grid[0], c->grid[1], c->grid[2]);
    block_dim = dim3(c->block[0], c->block[1], c->block[2]);
    threads.assign(size_t(block_dim.x) * block_dim.y * block_dim.z, Thread{});
    warp_arrived.assign((threads.size() + 31) / 32, 0);
    for (Buffer& b : buffers)
        if (b.readonly) mprotect(b.map + page, b.map_len - 2 * page, PROT_READ);
    const auto smem = shared_memory();
    SignalGuard guard;
    // blocks in the order start, start + step, ... (mod count), step coprime to count: a seeded permutation
    const unsigned long long count = 1ULL * grid_dim.x * grid_dim.y * grid_dim.z;
    unsigned long long step = 1 + next_random() % count, b = next_random() % count;
    while (gcd(step, count) != 1) step = 1 + next_random() % count;
    for (unsigned long long done = 0; done < count; ++done, b = (b + step) % count) {
        block_idx = {unsigned(b % grid_dim.x), unsigned(b / grid_dim.x % grid_dim.y),
                     unsigned(b / (1ULL * grid_dim.x * grid_dim.y))};
        std::memset(smem.first, 0xFF, smem.second);
        if (!run_block() || !dynamic_smem_intact(c->shared_bytes)) break;
    }
    return error.code;
}

// ---------------------------------------------------------------------------------------------- signatures
template <typename T>
std::string type_code() {  // "f4", "const f8*", ... as launcher.py spells the arguments it passes
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer<U>::value) {
        using E = std::remove_pointer_t<U>;
        return (std::is_const<E>::value ? "const " : "") + type_code<std::remove_cv_t<E>>() + "*";
    } else {
        static_assert(std::is_arithmetic<U>::value, "kernel arguments are pointers and numbers");
        const char kind = std::is_floating_point<U>::value ? 'f' : std::is_signed<U>::value ? 'i' : 'u';
        return std::string(1, kind) + std::to_string(sizeof(U));
    }
}

template <typename... A>
std::string signature(void (*)(A...)) {
    std::string s;
    ((s += (s.empty() ? "" : ",") + type_code<A>()), ...);
    return s;
}

template <typename... A, size_t... I>
void call(void (*f)(A...), void** a, std::index_sequence<I...>) { f(*static_cast<std::remove_cv_t<A>*>(a[I])...); }

template <typename... A>
constexpr std::index_sequence_for<A...> arity_sequence(void (*)(A...)) { return {}; }
}  // namespace fcemu

// ---------------------------------------------------------------------------------------------- exports
// The library is built with hidden visibility (build.py): only these entry points are exported, so two builds of
// one kernel file with different tunables, loaded in one process, never bind to each other's template code or
// static shared arrays.
#define FCEMU_API extern "C" __attribute__((visibility("default")))
FCEMU_API void fcemu_attach(void* handle) { fcemu::library = handle, fcemu::page = size_t(sysconf(_SC_PAGESIZE)); }
FCEMU_API const fcemu::Error* fcemu_error() { return &fcemu::error; }

FCEMU_API void* fcemu_buffer(unsigned long long nbytes, int flush_end, int readonly) {
    const size_t pg = fcemu::page, data = (nbytes + pg - 1) / pg * pg, len = data + 2 * pg;
    char* map = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (map == MAP_FAILED) return nullptr;
    mprotect(map, pg, PROT_NONE);
    mprotect(map + pg + data, pg, PROT_NONE);
    char* base = flush_end ? map + pg + data - nbytes : map + pg;
    fcemu::buffers.push_back({map, len, base, size_t(nbytes), readonly});
    return base;
}

FCEMU_API void fcemu_release_buffers() {
    for (const fcemu::Buffer& b : fcemu::buffers) munmap(b.map, b.map_len);
    fcemu::buffers.clear();
}

// One line per entry point, written by build.py after the kernel source.
#define FCEMU_EXPORT(name)                                                                               \
    FCEMU_API int fcemu_launch_##name(const fcemu::LaunchConfig* c, void** a) {                           \
        return fcemu::launch([](void** args) { fcemu::call(&name, args, fcemu::arity_sequence(&name)); }, c, a); \
    }                                                                                                    \
    FCEMU_API const char* fcemu_signature_##name() {                                                     \
        static const std::string s = fcemu::signature(&name);                                            \
        return s.c_str();                                                                                \
    }

// The one dynamic shared memory array (`extern __shared__ T name[]`) of the file, or a stand-in when it has none.
#define FCEMU_DYNAMIC_SMEM(type, name)                                                                   \
    alignas(16) thread_local type name[FCEMU_DYNAMIC_SMEM_BYTES / sizeof(type)];                          \
    extern "C" unsigned char* fcemu_dynamic_smem() { return reinterpret_cast<unsigned char*>(name); }
