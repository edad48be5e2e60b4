// hwc_file_table.h -- constant tables from binary files, for hwcodesign's own g++ builds (C simulation).
//
// Written for hwcodesign. The g++ command of C simulation force-includes this header and defines
// HWC_TABLES_FROM_FILES; a generated params header then declares each large table with
// HWC_FILE_TABLE instead of its initialiser (Vitis, which never sees this file, reads the
// initialised array beside it). The assembler copies the file's bytes into the library (.incbin,
// the path relative to the hls/ folder, where g++ runs), so the compiler never parses the
// values. The file holds the table's elements as the native integers `hwc_table_element` names,
// little-endian, row-major; `bytes` is its size, checked against the file and against the C++ type.
#ifndef HWCODESIGN_FILE_TABLE_H
#define HWCODESIGN_FILE_TABLE_H

#define HWC_FILE_TABLE(type, name, dims, file, bytes)                                                  \
    extern const type name dims __asm__("hwc_table_" #name) __attribute__((visibility("hidden")));    \
    static_assert(sizeof(name) == (bytes), "the C++ type of table " #name " is not the size of " file); \
    __asm__(".pushsection .rodata.hwc_table_" #name ",\"a\"\n"                                        \
            ".balign 64\n"                                                                             \
            "hwc_table_" #name ":\n"                                                                   \
            ".incbin \"" file "\"\n"                                                                   \
            ".if . - hwc_table_" #name " - (" #bytes ")\n"                                             \
            ".error \"" file " is not the size of table " #name "\"\n"                                 \
            ".endif\n"                                                                                 \
            ".popsection")

#endif
