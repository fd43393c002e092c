"""Tiny person-detector SavedModels with the two public signatures.

Each is a `tf.Module` whose `serving_default` has exactly the public
signature's input name, dtype and outputs (see hmr_tf.inference.detectors):

  * `save_object_detection`: the TF2 Object Detection API's: input
    `input_tensor` uint8 [1, H, W, 3]; `detection_boxes` [1, N, 4],
    `detection_classes` [1, N] float32, `detection_scores` [1, N],
    `num_detections` [1], and with `keypoints` `detection_keypoints`
    [1, N, 17, 2] and `detection_keypoint_scores` [1, N, 17].
  * `save_movenet`: MoveNet MultiPose's: input `input` int32 [1, H, W, 3]
    (the model checks the sides are multiples of 32); `output_0` [1, 6, 56].
  * `save_other`: a SavedModel with neither (a classifier's `logits`).

Their "person" 0 is the bright rectangle of the image (the box of its
pixels above 127, computed in the graph from the input it is given), so the
tests can check the demo feeds the image and maps the coordinates back;
keypoint 0 sits at its top-left corner and keypoint 1 at its bottom-right
(both score 0.9), the others score 0. Extra rows are constants.
"""

import numpy as np
import tensorflow as tf


def _bright_box(image):
  """[4] normalised (ymin, xmin, ymax, xmax) of the pixels above 127."""
  mask = tf.reduce_max(tf.cast(image[0], tf.int32), axis=-1) > 127
  shape = tf.cast(tf.shape(mask), tf.float32)
  rows = tf.cast(tf.where(tf.reduce_any(mask, axis=1))[:, 0], tf.float32)
  cols = tf.cast(tf.where(tf.reduce_any(mask, axis=0))[:, 0], tf.float32)
  return tf.stack([tf.reduce_min(rows) / shape[0],
                   tf.reduce_min(cols) / shape[1],
                   (tf.reduce_max(rows) + 1) / shape[0],
                   (tf.reduce_max(cols) + 1) / shape[1]])


def _corner_keypoints(box):
  """[17, 2] (y, x) and [17] scores: the box's two corners, the rest 0."""
  yx = tf.concat([tf.reshape(box, [2, 2]), tf.zeros([15, 2])], axis=0)
  scores = tf.constant([0.9, 0.9] + [0.0] * 15)
  return yx, scores


def save_object_detection(path, extra_boxes=(), extra_classes=(),
                          extra_scores=(), keypoints=False,
                          input_dtype=tf.uint8):
  """The TF2 Object Detection API's signature; person 0 the bright box.

  Args:
    path: the SavedModel folder.
    extra_boxes: [M, 4] constant normalised (ymin, xmin, ymax, xmax) rows.
    extra_classes: [M] their classes (1 = person).
    extra_scores: [M] their scores (person 0 scores 0.95).
    keypoints: add the keypoint outputs (extra rows' keypoints score 0).
    input_dtype: the input's dtype (the public one is uint8).
  """
  extra_boxes = tf.constant(np.reshape(extra_boxes, (-1, 4)), tf.float32)
  extra_classes = tf.constant(np.reshape(extra_classes, (-1,)), tf.float32)
  extra_scores = tf.constant(np.reshape(extra_scores, (-1,)), tf.float32)
  # The public models pad their outputs past num_detections: so does this.
  padding = 3

  class Detector(tf.Module):

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], input_dtype, name='input_tensor')])
    def detect(self, input_tensor):
      box = _bright_box(input_tensor)
      count = 1 + tf.shape(extra_boxes)[0]
      # Padding rows that would win if num_detections were ignored.
      pad = tf.tile([[0.0, 0.0, 0.5, 0.5]], [padding, 1])
      boxes = tf.concat([box[None], extra_boxes, pad], 0)
      classes = tf.concat([[1.0], extra_classes, tf.ones([padding])], 0)
      scores = tf.concat([[0.95], extra_scores, tf.ones([padding])], 0)
      out = {'detection_boxes': boxes[None],
             'detection_classes': classes[None],
             'detection_scores': scores[None],
             'num_detections': tf.cast(count, tf.float32)[None]}
      if keypoints:
        yx, kp_scores = _corner_keypoints(box)
        rows = count - 1 + padding
        out['detection_keypoints'] = tf.concat(
            [yx[None], tf.zeros([rows, 17, 2])], 0)[None]
        out['detection_keypoint_scores'] = tf.concat(
            [kp_scores[None], tf.zeros([rows, 17])], 0)[None]
      return out

  module = Detector()
  tf.saved_model.save(module, path,
                      signatures={'serving_default': module.detect})
  return path


def save_movenet(path):
  """MoveNet MultiPose's signature: row 0 the bright box, 5 rows at 0.05."""

  class MoveNet(tf.Module):

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.int32, name='input')])
    def detect(self, input):  # pylint: disable=redefined-builtin
      tf.debugging.assert_equal(tf.shape(input)[1:3] % 32, 0,
                                message='sides must be multiples of 32')
      box = _bright_box(input)
      yx, scores = _corner_keypoints(box)
      person = tf.concat([tf.reshape(tf.concat([yx, scores[:, None]], 1),
                                     [-1]), box, [0.8]], 0)
      others = tf.fill([5, 56], 0.05)
      return {'output_0': tf.concat([person[None], others], 0)[None]}

  module = MoveNet()
  tf.saved_model.save(module, path,
                      signatures={'serving_default': module.detect})
  return path


def save_other(path):
  """A SavedModel with neither signature (an image classifier's)."""

  class Classifier(tf.Module):

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.uint8, name='input_tensor')])
    def classify(self, input_tensor):
      mean = tf.reduce_mean(tf.cast(input_tensor, tf.float32))
      return {'logits': tf.stack([mean, -mean])[None]}

  module = Classifier()
  tf.saved_model.save(module, path,
                      signatures={'serving_default': module.classify})
  return path
