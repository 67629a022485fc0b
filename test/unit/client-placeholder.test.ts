/** placeholderDataURL: the manifest's ThumbHash decoded, by the bundled decoder, to a PNG data URL. */
import { expect } from 'chai';
import sharp from 'sharp';
import { thumbHashToDataURL } from 'thumbhash';
import { placeholderOfPixels } from '../../shared/image/placeholder.js';
import { client } from '../fixtures/client.js';

/** A 120×60 image, red on the left half and blue on the right, as the pipeline's placeholder. */
function halfAndHalf() {
  const width = 120;
  const height = 60;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.set(x < width / 2 ? [220, 20, 20] : [20, 20, 220], (y * width + x) * 3);
  return placeholderOfPixels({ width, height, channels: 3, data });
}

async function decode(dataUrl: string) {
  const match = /^data:image\/png;base64,(.+)$/.exec(dataUrl);
  expect(match, 'a PNG data URL').to.not.equal(null);
  return sharp(Buffer.from(match![1]!, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
}

describe('client placeholderDataURL', () => {
  it("decodes the pipeline's ThumbHash to a PNG with the image's aspect ratio and colours where they were", async () => {
    const placeholder = halfAndHalf();
    const url = client.placeholderDataURL({ placeholder });
    const { data, info } = await decode(url!);
    expect(info.width / info.height).to.be.closeTo(2, 0.25);
    const pixel = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    const [lr, , lb] = pixel(2, Math.floor(info.height / 2));
    const [rr, , rb] = pixel(info.width - 3, Math.floor(info.height / 2));
    expect(lr, 'red on the left').to.be.greaterThan(lb! + 60);
    expect(rb, 'blue on the right').to.be.greaterThan(rr! + 60);
  });

  it('is byte for byte what npm thumbhash makes (the bundled decoder is that one)', () => {
    const placeholder = halfAndHalf();
    expect(client.placeholderDataURL({ placeholder })).to.equal(
      thumbHashToDataURL(Buffer.from(placeholder.thumbhash, 'base64')),
    );
  });

  it('is undefined without a placeholder (manifests from before placeholders)', () => {
    expect(client.placeholderDataURL({})).to.equal(undefined);
    expect(client.placeholderDataURL({ placeholder: undefined })).to.equal(undefined);
  });
});
