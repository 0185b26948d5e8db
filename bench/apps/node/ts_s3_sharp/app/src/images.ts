import sharp from 'sharp';

// Makes a 64x48 PNG in memory (a red field with a 16x16 blue square in the
// top-left corner), resizes it to width x height, converts it to WebP and
// reports what libvips says about the results and two corner pixels.
export async function routeImage(width: number, height: number): Promise<object> {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 512;
  if (!ok(width) || !ok(height)) throw new Error('width and height must be integers in 1..512');
  const square = await sharp({
    create: { width: 16, height: 16, channels: 3, background: { r: 0, g: 0, b: 255 } },
  }).png().toBuffer();
  const source = await sharp({
    create: { width: 64, height: 48, channels: 3, background: { r: 255, g: 0, b: 0 } },
  })
    .composite([{ input: square, left: 0, top: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
  const sourceMeta = await sharp(source).metadata();
  const resized = await sharp(source).resize(width, height, { fit: 'fill', kernel: 'nearest' }).png().toBuffer();
  const meta = await sharp(resized).metadata();
  const { data, info } = await sharp(resized).raw().toBuffer({ resolveWithObject: true });
  const pixel = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x + 1) * info.channels));
  const webpMeta = await sharp(await sharp(resized).webp({ quality: 80 }).toBuffer()).metadata();
  return {
    source: { format: sourceMeta.format, width: sourceMeta.width, height: sourceMeta.height },
    format: meta.format,
    width: meta.width,
    height: meta.height,
    channels: meta.channels,
    pngSignature: resized.subarray(1, 4).toString('latin1'),
    topLeft: pixel(0, 0),
    bottomRight: pixel(width - 1, height - 1),
    webp: { format: webpMeta.format, width: webpMeta.width, height: webpMeta.height },
  };
}
