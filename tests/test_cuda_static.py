"""The static report of the CUDA kernels (fastconv/backends/cuda/sass.py): its parsers on text captured from nvcc 13.0
(ptxas -v) and cuobjdump 13.5 for sm_90, the occupancy arithmetic against cases worked out by hand, the launchers'
block sizes, the failure rules, and one real compile (skipped without nvcc or cuobjdump)."""

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastconv.backends.cuda import conv, linear, sass
from fastconv.backends.cuda.check import find_cuobjdump
from fastconv.backends.cuda.launch import TUNABLES, Launcher
from fastconv.backends.cuda.loader import kernels_dir
from fastconv.params import conv_params, linear_params

# ptxas -v of three small files: axpy_f64/axpy_f32, a kernel that spills under __launch_bounds__(1024, 2), one with
# 1200 bytes of __shared__, and a __noinline__ device function (mangled name, no "Used" line) that spills.
PTXAS = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'axpy_f64' for 'sm_90'
ptxas info    : Function properties for axpy_f64
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 0 barriers
ptxas info    : Compile time = 3.912 ms
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'spill_f32' for 'sm_90'
ptxas info    : Function properties for spill_f32
    200 bytes stack frame, 360 bytes spill stores, 384 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 200 bytes cumulative stack size
ptxas info    : Compile time = 61.451 ms
ptxas info    : Compiling entry function 'lb_f32' for 'sm_90'
ptxas info    : Function properties for lb_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 1 barriers, 1200 bytes smem
ptxas info    : Compile time = 2.923 ms
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'caller_f32' for 'sm_90'
ptxas info    : Function properties for caller_f32
    256 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 256 bytes cumulative stack size
ptxas info    : Compile time = 31.251 ms
ptxas info    : Function properties for _Z6helperPKfi
    0 bytes stack frame, 472 bytes spill stores, 500 bytes spill loads
"""

# cuobjdump -sass of `s = fmaf(x[i], x[i], s)` in a `#pragma unroll 1` loop: 21 instructions 0x0000-0x0140 (two
# predicated branches among them), then the branch to itself and the NOP padding.
SASS_LOOP = """
	code for sm_90
	.target	sm_90

		Function : dot_f32
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                    /* 0x00000a00ff017b82 */
                                                                             /* 0x000ff00000000800 */
        /*0010*/                   LDC R0, c[0x0][0x220] ;                   /* 0x00008800ff007b82 */
                                                                             /* 0x000e220000000800 */
        /*0020*/                   ULDC.64 UR6, c[0x0][0x208] ;              /* 0x0000820000067ab9 */
                                                                             /* 0x000fe20000000a00 */
        /*0030*/                   IMAD.MOV.U32 R7, RZ, RZ, RZ ;             /* 0x000000ffff077224 */
                                                                             /* 0x000fcc00078e00ff */
        /*0040*/                   LDC.64 R2, c[0x0][0x218] ;                /* 0x00008600ff027b82 */
                                                                             /* 0x000e620000000a00 */
        /*0050*/                   ISETP.GE.AND P0, PT, R0, 0x1, PT ;        /* 0x000000010000780c */
                                                                             /* 0x001fda0003f06270 */
        /*0060*/              @!P0 BRA 0x130 ;                               /* 0x0000000000308947 */
                                                                             /* 0x002fea0003800000 */
        /*0070*/                   IMAD.MOV.U32 R7, RZ, RZ, RZ ;             /* 0x000000ffff077224 */
                                                                             /* 0x000fe200078e00ff */
        /*0080*/                   UMOV UR4, URZ ;                           /* 0x0000003f00047c82 */
                                                                             /* 0x000fe20008000000 */
        /*0090*/                   ULDC.64 UR8, c[0x0][0x210] ;              /* 0x0000840000087ab9 */
                                                                             /* 0x000fca0000000a00 */
        /*00a0*/                   MOV R4, UR8 ;                             /* 0x0000000800047c02 */
                                                                             /* 0x000fe40008000f00 */
        /*00b0*/                   MOV R5, UR9 ;                             /* 0x0000000900057c02 */
                                                                             /* 0x000fca0008000f00 */
        /*00c0*/                   LDG.E R4, desc[UR6][R4.64] ;              /* 0x0000000604047981 */
                                                                             /* 0x000ea2000c1e1900 */
        /*00d0*/                   UIADD3 UR4, UR4, 0x1, URZ ;               /* 0x0000000104047890 */
                                                                             /* 0x000fe4000fffe03f */
        /*00e0*/                   UIADD3 UR8, UP0, UR8, 0x4, URZ ;          /* 0x0000000408087890 */
                                                                             /* 0x000fc8000ff1e03f */
        /*00f0*/                   ISETP.LE.AND P0, PT, R0, UR4, PT ;        /* 0x0000000400007c0c */
                                                                             /* 0x000fe2000bf03270 */
        /*0100*/                   UIADD3.X UR9, URZ, UR9, URZ, UP0, !UPT ;  /* 0x000000093f097290 */
                                                                             /* 0x000fe200087fe43f */
        /*0110*/                   FFMA R7, R4, R4, R7 ;                     /* 0x0000000404077223 */
                                                                             /* 0x004fd60000000007 */
        /*0120*/              @!P0 BRA 0xa0 ;                                /* 0xfffffffc00dc8947 */
                                                                             /* 0x000fea000383ffff */
        /*0130*/                   STG.E desc[UR6][R2.64], R7 ;              /* 0x0000000702007986 */
                                                                             /* 0x000fe2000c101906 */
        /*0140*/                   EXIT ;                                    /* 0x000000000000794d */
                                                                             /* 0x000fea0003800000 */
        /*0150*/                   BRA 0x150;                                /* 0xfffffffc00fc7947 */
                                                                             /* 0x000fc0000383ffff */
        /*0160*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*0170*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*0180*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*0190*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01a0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01b0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01c0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01d0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01e0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
        /*01f0*/                   NOP;                                      /* 0x0000000000007918 */
                                                                             /* 0x000fc00000000000 */
		..........

"""

# cuobjdump -sass of two entry points of one file (f64 first, as cuobjdump lists them), NOP padding cut to two:
# axpy_f64 is 16 instructions (0x0000-0x00f0, one DFMA, a predicated EXIT), axpy_f32 13 (0x0000-0x00c0, one FFMA).
SASS_TWO = """
	code for sm_90
	.target	sm_90

		Function : axpy_f64
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                  /* 0x00000a00ff017b82 */
                                                                           /* 0x000fe20000000800 */
        /*0010*/                   S2R R7, SR_TID.X ;                      /* 0x0000000000077919 */
                                                                           /* 0x000e240000002100 */
        /*0020*/                   LOP3.LUT R0, R7, 0x1, RZ, 0xc0, !PT ;   /* 0x0000000107007812 */
                                                                           /* 0x001fc800078ec0ff */
        /*0030*/                   ISETP.NE.U32.AND P0, PT, R0, 0x1, PT ;  /* 0x000000010000780c */
                                                                           /* 0x000fda0003f05070 */
        /*0040*/               @P0 EXIT ;                                  /* 0x000000000000094d */
                                                                           /* 0x000fea0003800000 */
        /*0050*/                   LDC.64 R2, c[0x0][0x218] ;              /* 0x00008600ff027b82 */
                                                                           /* 0x000e220000000a00 */
        /*0060*/                   ULDC.64 UR4, c[0x0][0x208] ;            /* 0x0000820000047ab9 */
                                                                           /* 0x000fe20000000a00 */
        /*0070*/                   ULDC.64 UR6, c[0x0][0x220] ;            /* 0x0000880000067ab9 */
                                                                           /* 0x000fcc0000000a00 */
        /*0080*/                   LDC.64 R4, c[0x0][0x210] ;              /* 0x00008400ff047b82 */
                                                                           /* 0x000e620000000a00 */
        /*0090*/                   IMAD.WIDE R2, R7, 0x8, R2 ;             /* 0x0000000807027825 */
                                                                           /* 0x001fcc00078e0202 */
        /*00a0*/                   LDG.E.64 R2, desc[UR4][R2.64] ;         /* 0x0000000402027981 */
                                                                           /* 0x000ea2000c1e1b00 */
        /*00b0*/                   IMAD.WIDE R4, R7, 0x8, R4 ;             /* 0x0000000807047825 */
                                                                           /* 0x002fca00078e0204 */
        /*00c0*/                   LDG.E.64 R6, desc[UR4][R4.64] ;         /* 0x0000000404067981 */
                                                                           /* 0x000ea4000c1e1b00 */
        /*00d0*/                   DFMA R6, R2, UR6, R6 ;                  /* 0x0000000602067c2b */
                                                                           /* 0x004fce0008000006 */
        /*00e0*/                   STG.E.64 desc[UR4][R4.64], R6 ;         /* 0x0000000604007986 */
                                                                           /* 0x000fe2000c101b04 */
        /*00f0*/                   EXIT ;                                  /* 0x000000000000794d */
                                                                           /* 0x000fea0003800000 */
        /*0100*/                   BRA 0x100;                              /* 0xfffffffc00fc7947 */
                                                                           /* 0x000fc0000383ffff */
        /*0110*/                   NOP;                                    /* 0x0000000000007918 */
                                                                           /* 0x000fc00000000000 */
        /*0120*/                   NOP;                                    /* 0x0000000000007918 */
                                                                           /* 0x000fc00000000000 */
		..........


		Function : axpy_f32
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                  /* 0x00000a00ff017b82 */
                                                                           /* 0x000fe20000000800 */
        /*0010*/                   S2R R7, SR_TID.X ;                      /* 0x0000000000077919 */
                                                                           /* 0x000e2e0000002100 */
        /*0020*/                   LDC.64 R2, c[0x0][0x218] ;              /* 0x00008600ff027b82 */
                                                                           /* 0x000e220000000a00 */
        /*0030*/                   ULDC.64 UR4, c[0x0][0x208] ;            /* 0x0000820000047ab9 */
                                                                           /* 0x000fe20000000a00 */
        /*0040*/                   ULDC UR6, c[0x0][0x220] ;               /* 0x0000880000067ab9 */
                                                                           /* 0x000fcc0000000800 */
        /*0050*/                   LDC.64 R4, c[0x0][0x210] ;              /* 0x00008400ff047b82 */
                                                                           /* 0x000e620000000a00 */
        /*0060*/                   IMAD.WIDE R2, R7, 0x4, R2 ;             /* 0x0000000407027825 */
                                                                           /* 0x001fc800078e0202 */
        /*0070*/                   IMAD.WIDE R4, R7, 0x4, R4 ;             /* 0x0000000407047825 */
                                                                           /* 0x002fe400078e0204 */
        /*0080*/                   LDG.E R2, desc[UR4][R2.64] ;            /* 0x0000000402027981 */
                                                                           /* 0x000ea8000c1e1900 */
        /*0090*/                   LDG.E R7, desc[UR4][R4.64] ;            /* 0x0000000404077981 */
                                                                           /* 0x000ea4000c1e1900 */
        /*00a0*/                   FFMA R7, R2, UR6, R7 ;                  /* 0x0000000602077c23 */
                                                                           /* 0x004fca0000000007 */
        /*00b0*/                   STG.E desc[UR4][R4.64], R7 ;            /* 0x0000000704007986 */
                                                                           /* 0x000fe2000c101904 */
        /*00c0*/                   EXIT ;                                  /* 0x000000000000794d */
                                                                           /* 0x000fea0003800000 */
        /*00d0*/                   BRA 0xd0;                               /* 0xfffffffc00fc7947 */
                                                                           /* 0x000fc0000383ffff */
        /*00e0*/                   NOP;                                    /* 0x0000000000007918 */
                                                                           /* 0x000fc00000000000 */
        /*00f0*/                   NOP;                                    /* 0x0000000000007918 */
                                                                           /* 0x000fc00000000000 */
		..........

"""

# cuobjdump -elf of the same file, trailing blanks stripped: axpy_f32 has __launch_bounds__(128), axpy_f64 none.
# Cut between sections; the KPARAM_INFO attributes of axpy_f64 are left out.
ELF = """\
.nv.info.axpy_f32
	<0x1>
	Attribute:	EIATTR_CUDA_API_VERSION
	Format:	EIFMT_SVAL
	Value:	0x82
	<0x2>
	Attribute:	EIATTR_KPARAM_INFO
	Format:	EIFMT_SVAL
	Value:	Index : 0x0	Ordinal : 0x2	Offset  : 0x10	Size    : 0x4
		Pointee's logAlignment : 0x0	Space : 0x0	cbank : 0x1f	Parameter Space : CBANK
	<0x6>
	Attribute:	EIATTR_MAXREG_COUNT
	Format:	EIFMT_HVAL
	Value:	0xff
	<0x8>
	Attribute:	EIATTR_EXIT_INSTR_OFFSETS
	Format:	EIFMT_SVAL
	Value:	0xc0
	<0x9>
	Attribute:	EIATTR_MAX_THREADS
	Format:	EIFMT_SVAL
	Value:	0x80 0x1 0x1
	<0x10>
	Attribute:	EIATTR_CBANK_PARAM_SIZE
	Format:	EIFMT_HVAL
	Value:	0x14


.nv.callgraph
 <0,-1>
 <0,-2>


.text.axpy_f64
lmem=0	smem=0
0xff017b82 0x00000a00 0x00000800 0x000fe200


.section .debug_frame
.nv.info.axpy_f64
	<0x1>
	Attribute:	EIATTR_CUDA_API_VERSION
	Format:	EIFMT_SVAL
	Value:	0x82
	<0x6>
	Attribute:	EIATTR_MAXREG_COUNT
	Format:	EIFMT_HVAL
	Value:	0xff
"""


def test_ptxas_resources_per_function():
    got = sass.parse_ptxas(PTXAS)
    assert got["axpy_f64"] == sass.Resources(registers=10, entry=True)
    assert got["spill_f32"] == sass.Resources(32, stack=200, spill_stores=360, spill_loads=384, entry=True)
    assert got["lb_f32"] == sass.Resources(registers=10, shared=1200, entry=True)
    assert got["caller_f32"] == sass.Resources(registers=32, stack=256, entry=True)  # its callee's spills are not its
    assert got["_Z6helperPKfi"] == sass.Resources(spill_stores=472, spill_loads=500, entry=False)
    assert len(got) == 5


def test_sass_instructions_and_fma_share():
    loop = sass.parse_sass(SASS_LOOP)
    assert list(loop) == ["dot_f32"]
    assert len(loop["dot_f32"]) == 32  # 0x000 .. 0x1f0 with the self-branch and 10 NOPs
    ops = sass.counted(loop["dot_f32"])
    assert len(ops) == 21 and ops.count("FFMA") == 1 and ops.count("BRA") == 2 and "NOP" not in ops
    two = {name: sass.counted(code) for name, code in sass.parse_sass(SASS_TWO).items()}
    assert (len(two["axpy_f64"]), two["axpy_f64"].count("DFMA")) == (16, 1)
    assert (len(two["axpy_f32"]), two["axpy_f32"].count("FFMA")) == (13, 1)
    assert two["axpy_f64"].count("EXIT") == 2 and "FFMA" not in two["axpy_f64"]


@pytest.mark.parametrize(
    "text, op",
    [("@!P0 BRA 0x130", "BRA"), ("FFMA.FTZ R7, R4, R4, R7", "FFMA"), ("LDG.E.64 R2, desc[UR4][R2.64]", "LDG")],
)
def test_mnemonic(text, op):
    assert sass.mnemonic(text) == op


def test_launch_bounds_from_the_elf():
    assert sass.parse_max_threads(ELF) == {"axpy_f32": 128}


@pytest.mark.parametrize(
    "regs, threads, smem, blocks, fraction, limiter",
    [
        (128, 256, 0, 2, 0.25, "registers"),  # 4096 regs per warp x 8 warps = 32768: 2 blocks, 16 warps
        (40, 256, 0, 6, 0.75, "registers"),  # 1280 per warp (exact), 10240 per block: 6 blocks, 48 warps
        (41, 256, 0, 5, 0.625, "registers"),  # 1312 rounds up to 1536 per warp, 12288 per block: 5 blocks
        (32, 256, 48 * 1024, 4, 0.5, "shared"),  # 49152 + 1024 per block of 233472: 4 blocks, 32 warps
        (32, 256, 45 * 1024, 4, 0.5, "shared"),  # 45 KiB + the reserved 1 KiB: 4 blocks (5 without the reserve)
        (16, 256, 227 * 1024, 1, 0.125, "shared"),  # the largest static allocation: one block
        (16, 256, 227 * 1024 + 4, 0, 0.0, "shared"),  # over 227 KiB: cannot launch
        (16, 32, 0, 32, 0.5, "blocks"),  # one-warp blocks stop at 32 per SM
        (64, 1024, 0, 1, 0.5, "registers"),  # 2048 per warp x 32 warps: the whole register file
        (24, 1024, 0, 2, 1.0, None),  # 768 per warp x 32 = 24576: registers allow 2, so do warps and threads
        (32, 100, 0, 16, 1.0, None),  # 4 warps of 1024 registers: 16 blocks = 64 warps, as many as warps allow
    ],
)
def test_occupancy_by_hand(regs, threads, smem, blocks, fraction, limiter):
    occ = sass.occupancy(regs, threads, smem)
    assert occ.blocks == blocks and occ.warps == blocks * math.ceil(threads / 32)
    assert occ.fraction == pytest.approx(fraction)
    if limiter:  # None: a tie, where any of the equal limits may be named
        assert occ.limiter == limiter


class _Recorder(Launcher):
    """Records each launch's (file, kernel, threads per block) instead of running it."""

    def __init__(self):
        super().__init__()
        self.launches = []

    def launch(self, file, kernel, cfg, args):
        self.launches.append((file, kernel, int(np.prod(cfg.block))))


def test_block_threads_agree_with_the_launchers():
    """The table of threads per block gives what conv.py and linear.py launch with, for every kernel they launch."""
    rec = _Recorder()
    f = np.float32
    p = conv_params("conv2d", (2, 4, 9, 7), (6, 4, 3, 3), None, 1, 1, 1, 1, "zeros", np.dtype(f))
    dw = conv_params("conv2d", (2, 4, 9, 7), (4, 1, 3, 3), None, 1, 1, 1, 4, "zeros", np.dtype(f))
    x, w, gy = np.ones(p.x_shape, f), np.ones(p.w_shape, f), np.ones(p.y_shape, f)
    listed = {name for name in sass.BLOCK_THREADS if "splitk" not in name}  # split-K reductions: igemm.py
    for name in listed:
        if name.startswith("conv2d_fwd_"):
            q = dw if "depthwise" in name else p
            conv.forward(rec, name, q, np.ones(q.x_shape, f), np.ones(q.w_shape, f), None)
        elif name.startswith("conv2d_bwd_data_"):
            conv.backward_data(rec, name, p, gy, w)
        elif name.startswith("conv2d_bwd_weight_"):
            conv.backward_weight(rec, name, p, gy, x)
    conv.backward_bias(rec, p, gy)
    lp = linear_params("linear", (3, 5), (7, 5), (7,), np.dtype(f))
    linear.forward(rec, lp, np.ones((3, 5), f), np.ones((7, 5), f), np.ones(7, f))
    linear.backward_bias(rec, lp, np.ones((3, 7), f))
    launched = {kernel.removesuffix("_f32") for _, kernel, _ in rec.launches}
    assert launched == listed
    for file, kernel, threads in rec.launches:
        assert sass.block_threads(file, kernel, TUNABLES[file]) == threads, kernel


def test_block_threads_from_the_tunables():
    t = {"V3_BM": 64, "V3_TM": 4, "V3_BN": 32, "V3_TN": 4, "V2_TP": 8, "V2_TQ": 16}
    assert sass.block_threads("conv2d_fwd.cu", "conv2d_fwd_v3_implicit_gemm_f64", t) == 16 * 8
    assert sass.block_threads("conv2d_fwd.cu", "conv2d_fwd_v2_smem_tiled_f32", t) == 128
    assert sass.block_threads("relu.cu", "relu_fwd_v1_f32", {"ELTWISE_BLOCK": 64}) == 64
    assert sass.block_threads("conv2d_fwd.cu", "conv2d_fwd_v99_unknown_f32", t) is None


def _row(kernel, fma, instructions):
    return sass.Row("x.cu", kernel, sass.Resources(registers=32, entry=True), 256, False, fma, instructions)


def test_failures_spills_and_floors():
    rows = [
        _row("conv2d_fwd_v9_gemm_f32", 40, 100),
        _row("conv2d_fwd_v4_depthwise_f32", 90, 100),  # not in the forward family
        _row("conv2d_bwd_weight_v1_naive_f32", 29, 100),  # below 0.30
        _row("conv2d_bwd_data_v1_naive_f64", 90, 100),  # f64 does not count: the family has no f32 kernel
    ]
    quiet = {"x.cu: conv2d_fwd_v9_gemm_f32": sass.Resources(registers=32, entry=True)}
    assert sass.problems(rows, quiet, floors=False) == []
    bad = sass.problems(rows, quiet, floors=True)
    assert len(bad) == 2
    assert "backward weight" in bad[0] and "0.290" in bad[0] and "no f32 kernel" in bad[1]
    rows.append(_row("conv2d_bwd_data_v2_gemm_f32", 30, 100))
    rows.append(_row("conv2d_bwd_weight_v3_gemm_f32", 31, 100))
    assert sass.problems(rows, quiet, floors=True) == []
    # tensor-core entry points count HMMA: outside the FFMA floors, and one without HMMA fails
    rows.append(_row("conv2d_fwd_v20_mma_tf32_f32", 0, 100))
    assert sass.problems(rows, quiet, floors=True) == [
        "tensor cores: conv2d_fwd_v20_mma_tf32_f32 has no HMMA instruction"
    ]
    rows[-1] = _row("conv2d_fwd_v20_mma_tf32_f32", 99, 100)
    assert sass.floor_status(rows)[0][1].kernel == "conv2d_fwd_v9_gemm_f32"
    assert sass.problems(rows, quiet, floors=True) == []
    spilled = {**quiet, "x.cu: _Z6helperPKfi": sass.Resources(spill_loads=4)}
    assert sass.problems(rows, spilled, floors=False) == ["spill: x.cu: _Z6helperPKfi stores 0 B, loads 4 B"]


NVCC, CUOBJDUMP = shutil.which("nvcc"), find_cuobjdump(shutil.which("nvcc"))
needs_tools = pytest.mark.skipif(not (NVCC and CUOBJDUMP), reason="needs nvcc and cuobjdump (nvidia-cuda-cuobjdump)")


@needs_tools
def test_real_kernel_file(tmp_path):
    """relu.cu compiled for sm_90: a row per entry point its source declares (FC_ENTRY_POINTS* makes name_f32 and
    name_f64), each with registers, instructions and a block size, and in the written report."""
    source = kernels_dir() / "relu.cu"
    declared = re.findall(r"^FC_ENTRY_POINTS\w*\((\w+),", source.read_text(), flags=re.M)
    assert "relu_fwd_v1" in declared and "relu_bwd_v1" in declared
    report = tmp_path / "static.md"
    assert sass.main(NVCC, CUOBJDUMP, report, floors=False, files=[source]) == 0
    rows, functions, log = sass.analyse(NVCC, CUOBJDUMP, source, tmp_path)
    assert log == ""
    assert sorted(r.kernel for r in rows) == sorted(f"{name}_{t}" for name in declared for t in ("f32", "f64"))
    for r in rows:
        assert r.res.registers > 0 and r.instructions > 0 and r.threads and r.threads > 0
        assert r.res.spill_stores == r.res.spill_loads == 0
        assert f"`{r.kernel}`" in report.read_text()
    v1 = next(r for r in rows if r.kernel == "relu_fwd_v1_f32")
    assert v1.threads == TUNABLES["relu.cu"]["ELTWISE_BLOCK"] and not v1.bounded


@needs_tools
def test_a_spilling_kernel_fails(tmp_path):
    """A kernel forced to 32 registers by __launch_bounds__(1024, 2) spills: the command exits 1, and the block
    size comes from the bounds."""
    src = tmp_path / "spill.cu"
    src.write_text(
        'extern "C" __global__ void __launch_bounds__(1024, 2) spill_f32(const float* x, float* y, int n) {\n'
        "    float a[48];\n#pragma unroll\n    for (int i = 0; i < 48; ++i) a[i] = x[i * n + threadIdx.x];\n"
        "    for (int k = 0; k < n; ++k) {\n#pragma unroll\n"
        "        for (int i = 0; i < 48; ++i) a[i] = fmaf(a[i], a[(i + 7) % 48], x[k]);\n    }\n"
        "    float s = 0.f;\n#pragma unroll\n    for (int i = 0; i < 48; ++i) s += a[i];\n"
        "    y[threadIdx.x] = s;\n}\n"
    )
    rows, _, log = sass.analyse(NVCC, CUOBJDUMP, src, tmp_path)
    assert log == "" and [r.kernel for r in rows] == ["spill_f32"]
    (row,) = rows
    assert row.threads == 1024 and row.bounded and row.res.registers == 32 and row.res.spill_stores > 0
    assert row.fma >= 48 and row.occupancy.blocks == 2
    assert sass.main(NVCC, CUOBJDUMP, tmp_path / "r.md", floors=False, files=[Path(src)]) == 1
