"""Weak-perspective camera: 3D points to normalised 2D crop coordinates.

HMR's camera has three numbers, cam = [s, tx, ty]: a scale and a 2D
translation. It looks straight down the z axis (no rotation; the global body
rotation lives in the pose) and ignores depth:

  x_2d = s * (X_x + tx)
  y_2d = s * (X_y + ty)

Note the translation is added *before* scaling (the original code's
convention), so (tx, ty) are in metres of the body's frame and s converts
metres into crop units. The output is in the crop's normalised coordinates,
where -1 is the left/top edge and +1 the right/bottom edge of the S x S crop,
i.e. pixel = (x_2d + 1) / 2 * S.

Worked example: a point X = (0.5, -0.2, 3.0) metres, cam = (0.9, 0.1, 0.0):
  x_2d = 0.9 * (0.5 + 0.1) = 0.54,  y_2d = 0.9 * (-0.2 + 0.0) = -0.18;
  the depth 3.0 plays no part. In a 224-pixel crop this is the pixel
  ((0.54 + 1) / 2 * 224, (-0.18 + 1) / 2 * 224) = (172.48, 91.84).
"""

import tensorflow as tf


def project(points: tf.Tensor, cam: tf.Tensor) -> tf.Tensor:
  """Projects 3D points with a weak-perspective camera.

  Args:
    points: [B, K, 3] points in the body's frame.
    cam: [B, 3] cameras (s, tx, ty).

  Returns:
    [B, K, 2] points in normalised crop coordinates.
  """
  points = tf.convert_to_tensor(points)
  cam = tf.cast(cam, points.dtype)
  scale = cam[:, None, 0:1]  # [B, 1, 1]
  trans = cam[:, None, 1:3]  # [B, 1, 2]
  return scale * (points[..., :2] + trans)
