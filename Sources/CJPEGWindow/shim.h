/// A window of a JPEG datastream decoded with libjpeg's cropping and skipping, so only the rows
/// and columns a region needs go through the inverse DCT, upsampling and colour conversion, and
/// nothing below the window is decoded at all. In C because libjpeg reports errors by longjmp,
/// which Swift cannot catch.
#include <stddef.h>
#include <stdio.h>  /* before jpeglib.h, which uses size_t and FILE without including them */
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct ssmamba_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void ssmamba_jpeg_error_exit(j_common_ptr info) {
    struct ssmamba_jpeg_error *error = (struct ssmamba_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

static void ssmamba_jpeg_ignore_warning(j_common_ptr info, int level) { (void)info; (void)level; }

/// Decodes columns [left, left + width) of rows [top, top + height) of `data` as RGB into `out`
/// (`stride` bytes per row). The decoder works on a margin of one iMCU around the window and
/// discards it, so the pixels equal those of a full decode (fancy upsampling reads neighbouring
/// chroma). `rgb_data`: the components are R, G, B (a TIFF that says photometric RGB), not YCbCr.
/// Returns 0, or -1 with `message` set.
static int ssmamba_jpeg_decode_window(const unsigned char *data, unsigned long size, int rgb_data, int left, int top, int width, int height,
                                      unsigned char *out, int stride, char *message, int message_size) {
    struct jpeg_decompress_struct info;
    struct ssmamba_jpeg_error error;
    unsigned char *volatile row = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = ssmamba_jpeg_error_exit;
    error.manager.emit_message = ssmamba_jpeg_ignore_warning;
    if (setjmp(error.jump)) {
        snprintf(message, (size_t)message_size, "%s", error.message);
        jpeg_destroy_decompress(&info);
        free(row);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, size);
    jpeg_read_header(&info, TRUE);
    if (rgb_data) info.jpeg_color_space = JCS_RGB;
    info.out_color_space = JCS_RGB;
    jpeg_start_decompress(&info);
    if (left < 0 || top < 0 || width <= 0 || height <= 0 || info.output_components != 3
        || (JDIMENSION)(left + width) > info.output_width || (JDIMENSION)(top + height) > info.output_height) {
        snprintf(message, (size_t)message_size, "window %dx%d at (%d, %d) outside the %ux%u image", width, height, left, top,
                 info.output_width, info.output_height);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    int block_width = info.max_h_samp_factor * DCTSIZE, block_height = info.max_v_samp_factor * DCTSIZE;
    int first_column = left - block_width > 0 ? left - block_width : 0;
    int end_column = left + width + block_width < (int)info.output_width ? left + width + block_width : (int)info.output_width;
    JDIMENSION crop_x = (JDIMENSION)first_column, crop_width = (JDIMENSION)(end_column - first_column);
    if (crop_width < info.output_width) jpeg_crop_scanline(&info, &crop_x, &crop_width);
    int first_row = top - block_height > 0 ? (top - block_height) / block_height * block_height : 0;
    if (first_row > 0) jpeg_skip_scanlines(&info, (JDIMENSION)first_row);
    row = (unsigned char *)malloc((size_t)info.output_width * 3);
    if (row == NULL) {
        snprintf(message, (size_t)message_size, "out of memory");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    int offset = (left - (int)crop_x) * 3;
    for (int y = first_row; y < top + height; y++) {
        JSAMPROW target = row;
        jpeg_read_scanlines(&info, &target, 1);
        if (y >= top) memcpy(out + (size_t)(y - top) * (size_t)stride, row + offset, (size_t)width * 3);
    }
    jpeg_abort_decompress(&info);
    jpeg_destroy_decompress(&info);
    free(row);
    return 0;
}
