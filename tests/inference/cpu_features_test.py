"""Native bfloat16 detection from /proc/cpuinfo text (no TensorFlow)."""

import pytest

from hmr_tf.inference import cpu_features

# Abridged /proc/cpuinfo texts of real CPU kinds (two logical CPUs each).
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu sse2 avx avx2 fma bmi2 vaes vpclmulqdq
"""
CASCADE_LAKE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6248
flags\t\t: fpu avx avx2 avx512f avx512bw avx512_vnni
"""
ZEN4 = """processor\t: 0
model name\t: AMD EPYC 9654
flags\t\t: fpu avx avx2 avx512f avx512_bf16 avx512_vnni
"""
GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes sha1 sve asimdbf16 bf16 i8mm
CPU implementer\t: 0x41
"""
GRAVITON2 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp
"""


@pytest.mark.parametrize('text, native', [
    (SAPPHIRE_RAPIDS, True), (ZEN4, True), (GRAVITON3, True),
    (ZEN3, False), (CASCADE_LAKE, False), (GRAVITON2, False),
    ('', None), ('processor\t: 0\nmodel name\t: something\n', None)])
def test_native_bf16(text, native):
  flags = cpu_features.parse_cpu_flags(text)
  assert cpu_features.has_native_bf16(flags) is native
  warning = cpu_features.bf16_export_warning(flags)
  # The warning only where the CPU is known to lack bfloat16.
  assert (warning is not None) == (native is False)
  if warning:
    assert 'without bfloat16 instructions' in warning
    assert '\n' not in warning


def test_flags_are_the_union_of_the_cpus_lines():
  flags = cpu_features.parse_cpu_flags(SAPPHIRE_RAPIDS)
  assert {'avx2', 'avx512f', 'amx_bf16', 'amx_tile'} <= flags
  assert 'genuineintel' not in flags  # only the flags line counts
  # The "flags" key is matched exactly, not as a prefix of another key.
  assert not cpu_features.parse_cpu_flags('flagsx\t: avx512_bf16\n')


def test_reads_a_file_and_describes_the_cpu(tmp_path):
  path = tmp_path / 'cpuinfo'
  path.write_text(SAPPHIRE_RAPIDS)
  flags = cpu_features.cpu_flags(str(path))
  assert cpu_features.has_native_bf16(flags)
  text = cpu_features.describe_cpu(str(path))
  assert text.startswith('Intel(R) Xeon(R) Platinum 8480+; ')
  assert 'amx_bf16' in text and 'avx512_bf16' in text and 'fpu' not in text
  assert cpu_features.cpu_flags(str(tmp_path / 'missing')) is None
  assert cpu_features.describe_cpu(str(tmp_path / 'missing')) == 'unknown CPU'
